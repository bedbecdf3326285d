// What the docs' snippets use without defining: batchkit's API as if imported, and the reader's own
// app, store and settings. A snippet's own import or declaration of a name shadows the one here.
import type * as fs_ from 'node:fs'
import type * as core from '@batchkit/core'
import type * as koa from '@batchkit/koa'
import type * as nest from '@batchkit/nestjs'
import type KeyvRedis_ from '@keyv/redis'
import type * as nestCommon from '@nestjs/common'
import type * as nestConfig from '@nestjs/config'
import type express_ from 'express'
import type * as keyv from 'keyv'
import type koaApp from 'koa'
import type OpenAI_ from 'openai'

declare global {
  // batchkit, as the snippets' elided imports would bring it.
  const createBatchKit: typeof core.createBatchKit
  const openai: typeof core.openai
  const azure: typeof core.azure
  const vertex: typeof core.vertex
  const apiKeyAuth: typeof core.apiKeyAuth
  const parseApiKeys: typeof core.parseApiKeys
  const createKoaMiddleware: typeof koa.createKoaMiddleware
  const BatchKitModule: typeof nest.BatchKitModule
  type ProviderUpload = core.ProviderUpload
  type ProviderFile = core.ProviderFile
  type ProviderDownload = core.ProviderDownload
  type ProviderBatchRequest = core.ProviderBatchRequest
  type ProviderBatch = core.ProviderBatch

  // Other libraries the snippets use, as their own imports would bring them.
  const fs: typeof fs_
  const OpenAI: typeof OpenAI_
  const Keyv: typeof keyv.Keyv
  const KeyvRedis: typeof KeyvRedis_
  const express: typeof express_
  const Koa: typeof koaApp
  const Module: typeof nestCommon.Module
  const Injectable: typeof nestCommon.Injectable
  const ConfigModule: typeof nestConfig.ConfigModule
  const ConfigService: typeof nestConfig.ConfigService
  type ConfigService = nestConfig.ConfigService

  // The reader's own app and settings.
  const store: keyv.Keyv
  const providers: Record<string, core.Provider>
  const authenticate: core.Authenticate
  const kit: core.BatchKit
  const apiKey: string
  const token: string
  const port: number
  /** USD per calendar month, by owner. */
  const limits: Record<string, number>
  const pino: () => core.Logger
  const client: OpenAI_
  const batch: OpenAI_.Batch
  const ledger: { record(owner: string, cost: number | null, batchId: string): Promise<void> }
  const tenants: { get(owner: string): Promise<{ webhookUrl?: string; webhookSecret: string }> }
  function onBatchCompleted(batchId: string): Promise<void>
}
