// Koa 2 installed beside Koa 3 under the alias `koa2`; its API is typed as Koa 3's.
declare module 'koa2' {
  import Koa from 'koa'
  export default Koa
}
