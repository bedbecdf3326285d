// Preloaded (`node --import`) into a server the bench did not write, such as Portkey's gateway,
// which binds every interface: every `listen` is forced onto 127.0.0.1, and the address it gets
// is sent to the bench over IPC.
import net from 'node:net'

const listen = net.Server.prototype.listen

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const callback = typeof args.at(-1) === 'function' ? args.pop() : undefined
  const first = args[0]
  const port = typeof first === 'object' && first !== null ? (first.port ?? 0) : Number(first ?? 0) || 0
  this.once('listening', () => {
    const { port: bound, address } = this.address()
    process.send?.({ type: 'listening', port: bound, address })
  })
  return listen.call(this, { port, host: '127.0.0.1' }, callback)
}

const exit = () => process.exit(0)
process.once('SIGTERM', exit)
process.once('disconnect', exit)
