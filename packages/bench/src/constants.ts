/** The key batchkit hosts accept from the bench's clients (`Authorization: Bearer …`), for the owner `bench`. */
export const BENCH_API_KEY = 'sk-bench-client'

/** The key the fake upstreams accept, from batchkit, Portkey and the direct client alike. */
export const UPSTREAM_API_KEY = 'sk-bench-upstream'

/** The model every generated request line names. */
export const MODEL = 'gpt-4o-mini'

/** The batch endpoint every generated request line targets. */
export const ENDPOINT = '/v1/chat/completions'
