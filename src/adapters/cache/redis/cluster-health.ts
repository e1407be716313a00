/**
 * What a Redis Cluster client knows about its parts, for failing fast while part of the cluster is
 * lost: the masters that stopped answering (a command for one of their slots fails at once instead
 * of waiting, and the breaker serves that call from memory), and whether the cluster says it is down
 * (`CLUSTERDOWN`, cluster_state:fail: every slot, so the whole cache counts as not ready).
 */
import type { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { ClockPort } from '../../../domain/ports/clock.port.js';

export interface ClusterHealthOptions {
  /** A master marked unreachable gets one command through this often, to see whether it is back. Default 1000 ms. */
  retryEveryMs?: number;
  /** While the cluster is down, CLUSTER INFO is asked this often. Default 1000 ms. */
  stateEveryMs?: number;
  clock: ClockPort;
  /** A master became unreachable or answers again; the cluster went down or is ok again. */
  onChange: (change: ClusterHealthChange) => void;
}

export type ClusterHealthChange = { state: 'node_unreachable' | 'node_back'; node: string } | { state: 'down' | 'ok' };

/** Failures that say the node did not answer (not an answer about the command). */
function isUnanswered(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  const name = err instanceof Error ? err.name : '';
  return (
    message.includes('Command timed out') ||
    message.includes('Connection is closed') ||
    message.includes("isn't writeable") ||
    message.includes('Too many Cluster redirections') ||
    message.includes('ECONNREFUSED') ||
    name === 'MaxRetriesPerRequestError'
  );
}

export function isClusterDown(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('CLUSTERDOWN');
}

export class ClusterHealth {
  /** Masters (host:port) that did not answer, with the time the next command may try them. */
  private readonly unreachable = new Map<string, number>();
  private down = false;
  private stateTimer: (() => void) | undefined;
  private checking = false;
  private closed = false;
  private readonly retryEveryMs: number;
  private readonly stateEveryMs: number;

  constructor(
    private readonly cluster: Cluster,
    private readonly options: ClusterHealthOptions,
  ) {
    this.retryEveryMs = options.retryEveryMs ?? 1000;
    this.stateEveryMs = options.stateEveryMs ?? 1000;
  }

  /** The cluster said CLUSTERDOWN and has not said cluster_state:ok since. */
  get isDown(): boolean {
    return this.down;
  }

  /**
   * Whether a command for `key` (with its prefix) should be sent: false while its slot's master is
   * marked unreachable, except for one command per retryEveryMs that finds out whether it is back.
   */
  admits(key: string): boolean {
    if (this.unreachable.size === 0) return true;
    const node = this.masterOf(key);
    if (node === undefined) return true;
    const retryAt = this.unreachable.get(node);
    if (retryAt === undefined) return true;
    const now = this.options.clock.now();
    if (now < retryAt) return false;
    this.unreachable.set(node, now + this.retryEveryMs);
    return true;
  }

  /** A command for `key` was answered: its master is back if it was marked. */
  answered(key: string): void {
    if (this.unreachable.size === 0) return;
    const node = this.masterOf(key);
    if (node !== undefined && this.unreachable.delete(node)) this.options.onChange({ state: 'node_back', node });
  }

  /** A command for `key` failed with `err`: marks its master unreachable, or the cluster down. */
  failed(key: string, err: unknown): void {
    if (this.closed) return;
    if (isClusterDown(err)) {
      this.markDown();
      return;
    }
    if (!isUnanswered(err)) return;
    const node = this.masterOf(key);
    if (node === undefined || this.unreachable.has(node)) return;
    this.unreachable.set(node, this.options.clock.now() + this.retryEveryMs);
    this.options.onChange({ state: 'node_unreachable', node });
  }

  close(): void {
    this.closed = true;
    this.stateTimer?.();
    this.stateTimer = undefined;
    this.unreachable.clear();
  }

  private masterOf(key: string): string | undefined {
    return this.cluster.slots[calculateSlot(key)]?.[0];
  }

  private markDown(): void {
    if (this.down) return;
    this.down = true;
    this.options.onChange({ state: 'down' });
    this.stateTimer = this.options.clock.every(this.stateEveryMs, () => this.checkState());
  }

  /** While down: asks a node that answers for cluster_state; ok clears the down state. */
  private checkState(): void {
    if (this.checking || this.closed) return;
    const node = this.cluster.nodes('master').find((n) => n.status === 'ready');
    if (node === undefined) return;
    this.checking = true;
    node
      .cluster('INFO')
      .then((info: unknown) => {
        if (this.closed || !this.down || !/cluster_state:ok/.test(String(info))) return;
        this.down = false;
        this.stateTimer?.();
        this.stateTimer = undefined;
        this.unreachable.clear();
        this.options.onChange({ state: 'ok' });
      })
      .catch(() => undefined)
      .finally(() => {
        this.checking = false;
      });
  }
}
