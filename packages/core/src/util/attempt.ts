/** Runs `work` for its side effect: true when it succeeded, false (after `onError`) when it failed. */
export function attempt(work: Promise<unknown>, onError: (error: unknown) => void): Promise<boolean> {
  return work.then(
    () => true,
    (error) => {
      onError(error)
      return false
    },
  )
}
