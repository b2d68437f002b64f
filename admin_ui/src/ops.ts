// The ops panel's live view of /ws/ops: the socket table kept from a snapshot plus deltas, and
// five minutes of per-second samples for the charts. Reconnects with backoff when it drops,
// each time with a fresh single-use ticket.
import { reactive, shallowRef, triggerRef } from "vue";
import { ApiError, ticketedSocketUrl } from "./api";
import type {
  EngineState,
  OpsDelta,
  OpsSnapshot,
  ProcessState,
  ReplicaState,
  SocketRow,
} from "./types";

export const HISTORY_SECONDS = 300;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

export interface Sample {
  t: string;
  sockets: number;
  queue: number;
  tokensPerS: number;
}

export function useOpsFeed(onUnauthorized: () => void) {
  const rows = shallowRef(new Map<string, SocketRow>());
  const state = reactive({
    connected: false,
    reconnecting: false,
    replica: null as ReplicaState | null,
    engine: null as EngineState | null,
    process: null as ProcessState | null,
    samples: [] as Sample[],
  });
  let socket: WebSocket | null = null;
  let retryMs = FIRST_RETRY_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  function sample(t: string): void {
    let tokensPerS = 0;
    for (const row of rows.value.values()) tokensPerS += row.tokens_per_s ?? 0;
    state.samples.push({
      t,
      sockets: rows.value.size,
      queue: state.engine?.queue_depth ?? 0,
      tokensPerS: Math.round(tokensPerS * 10) / 10,
    });
    if (state.samples.length > HISTORY_SECONDS)
      state.samples.splice(0, state.samples.length - HISTORY_SECONDS);
  }

  function apply(frame: OpsSnapshot | OpsDelta): void {
    if (frame.type === "snapshot") {
      rows.value = new Map(frame.sockets.map((row) => [row.id, row]));
    } else {
      for (const id of frame.remove) rows.value.delete(id);
      for (const row of frame.upsert) rows.value.set(row.id, row);
      triggerRef(rows);
    }
    state.replica = frame.replica;
    state.engine = frame.engine;
    state.process = frame.process;
    sample(frame.t);
  }

  function retry(): void {
    state.reconnecting = true;
    timer = setTimeout(open, retryMs);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }

  async function open(): Promise<void> {
    let url: string;
    try {
      url = await ticketedSocketUrl("ops");
    } catch (error) {
      if (stopped) return;
      if (error instanceof ApiError && error.status === 401) onUnauthorized();
      else retry();
      return;
    }
    if (stopped) return;
    const ws = new WebSocket(url);
    socket = ws;
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data) as OpsSnapshot | OpsDelta;
      if (frame.type === "snapshot") {
        state.connected = true;
        state.reconnecting = false;
        retryMs = FIRST_RETRY_MS;
      }
      apply(frame);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      state.connected = false;
      if (stopped) return;
      // A 4401 (session expired, ticket refused) is retried too: asking for the next ticket
      // answers 401, which leads to the login page, if the session is really gone.
      retry();
    };
  }

  function close(): void {
    stopped = true;
    clearTimeout(timer);
    socket?.close(1000);
    socket = null;
  }

  return { rows, state, open, close };
}
