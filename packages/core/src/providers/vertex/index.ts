export { CLOUD_PLATFORM_SCOPE } from './auth.js'
export { VERTEX_LIMITS, type VertexProviderOptions, vertex } from './provider.js'
