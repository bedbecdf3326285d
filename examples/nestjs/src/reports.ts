import type { IncomingMessage } from 'node:http'
import {
  type Authenticate,
  apiKeyAuth,
  type BatchKit,
  type BatchStatus,
  DEFAULT_PRINCIPAL,
  type Principal,
  parseApiKeys,
} from '@batchkit/core'
import { InjectBatchKit } from '@batchkit/nestjs'
import {
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  Inject,
  Injectable,
  Module,
  Req,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common'
import { ConfigService } from '@nestjs/config'
import type { Settings } from './backend.module.js'

/** An owner's batches at a glance. */
export interface UsageReport {
  owner: string
  batches: number
  byStatus: Partial<Record<BatchStatus, number>>
  requests: { total: number; completed: number; failed: number }
}

/** The app's own code on top of batchkit: it calls the injected kit directly, no HTTP involved. */
@Injectable()
export class ReportsService {
  constructor(@InjectBatchKit() private readonly kit: BatchKit) {}

  /** Every batch of `principal`, counted by status, with their request counts added up. */
  async usage(principal: Principal): Promise<UsageReport> {
    const report: UsageReport = {
      owner: principal.owner,
      batches: 0,
      byStatus: {},
      requests: { total: 0, completed: 0, failed: 0 },
    }
    let after: string | undefined
    for (;;) {
      const page = await this.kit.batches.list(principal, { after, limit: 100 })
      for (const batch of page.data) {
        report.batches++
        report.byStatus[batch.status] = (report.byStatus[batch.status] ?? 0) + 1
        report.requests.total += batch.requestCounts.total
        report.requests.completed += batch.requestCounts.completed
        report.requests.failed += batch.requestCounts.failed
      }
      if (!page.hasMore) return report
      after = page.data.at(-1)?.id
    }
  }
}

type AuthedRequest = IncomingMessage & { principal?: Principal }

/**
 * Nest guards do not wrap batchkit's routes (they are middleware, answered before any guard runs).
 * This guard protects the app's own routes with the same keys, read from the same settings, so a
 * key names the same owner here and in batchkit.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly authenticate: Authenticate | undefined

  constructor(@Inject(ConfigService) config: ConfigService<Settings, true>) {
    const keys = config.get('example', { infer: true }).apiKeys
    this.authenticate = keys ? apiKeyAuth(parseApiKeys(keys)) : undefined
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthedRequest>()
    const principal = this.authenticate
      ? await this.authenticate({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers })
      : DEFAULT_PRINCIPAL
    if (!principal) throw new UnauthorizedException('Send one of BATCHKIT_API_KEYS as "Authorization: Bearer <key>".')
    req.principal = principal
    return true
  }
}

/** `GET /reports/usage`: the caller's batches at a glance. */
@Controller('reports')
export class ReportsController {
  constructor(@Inject(ReportsService) private readonly reports: ReportsService) {}

  @Get('usage')
  @UseGuards(ApiKeyGuard)
  usage(@Req() req: AuthedRequest): Promise<UsageReport> {
    return this.reports.usage(req.principal as Principal)
  }
}

@Module({ providers: [ReportsService, ApiKeyGuard], controllers: [ReportsController], exports: [ReportsService] })
export class ReportsModule {}
