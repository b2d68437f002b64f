// The playground's side of /ws/chat: a chat user token from the admin API, then the same frames
// the mini-program sends and receives.
import { reactive } from "vue";
import { ticketedSocketUrl } from "./api";
import { randomId } from "./format";

export interface Turn {
  role: "user" | "assistant";
  text: string;
  state: "streaming" | "done" | "error";
  finishReason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  error?: string;
}

type Frame = { type: string; [key: string]: any };

export function useChatSocket() {
  const state = reactive({
    status: "closed" as "connecting" | "open" | "closed",
    quota: null as number | null,
    conversationId: null as number | null,
    queuedAt: null as number | null,
    generating: false,
    closeReason: "",
    turns: [] as Turn[],
  });
  let socket: WebSocket | null = null;
  let opening: Promise<void> | null = null;

  function current(): Turn | undefined {
    const last = state.turns[state.turns.length - 1];
    return last?.role === "assistant" ? last : undefined;
  }

  function finish(turn: Turn | undefined, patch: Partial<Turn>): void {
    if (turn) Object.assign(turn, patch);
    state.generating = false;
    state.queuedAt = null;
  }

  function onFrame(frame: Frame, ready: () => void): void {
    switch (frame.type) {
      case "ready":
        state.quota = frame.quota;
        state.status = "open";
        ready();
        break;
      case "queued":
        state.queuedAt = frame.position;
        break;
      case "start":
        state.conversationId = frame.conversation_id;
        state.queuedAt = null;
        break;
      case "delta": {
        const turn = current();
        if (turn) turn.text += frame.text;
        break;
      }
      case "done":
        state.quota = frame.quota;
        finish(current(), { state: "done", finishReason: frame.finish_reason, usage: frame.usage });
        break;
      case "error":
        finish(current(), { state: "error", error: `${frame.code}: ${frame.message}` });
        break;
    }
  }

  async function connect(): Promise<void> {
    const url = await ticketedSocketUrl("chat");
    state.status = "connecting";
    state.closeReason = "";
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url);
      socket = ws;
      ws.onmessage = (event) => onFrame(JSON.parse(event.data), resolve);
      ws.onclose = (event) => {
        if (socket === ws) socket = null;
        state.status = "closed";
        state.closeReason = event.reason ? `${event.code} ${event.reason}` : String(event.code);
        if (state.generating) finish(current(), { state: "error", error: state.closeReason });
        reject(new Error(`socket closed: ${state.closeReason}`));
      };
    });
  }

  /** Open the socket unless it is open; concurrent callers share one attempt. */
  function ensureOpen(): Promise<void> {
    if (socket && state.status === "open") return Promise.resolve();
    opening ??= connect().finally(() => (opening = null));
    return opening;
  }

  async function send(content: string): Promise<void> {
    await ensureOpen();
    state.turns.push({ role: "user", text: content, state: "done" });
    state.turns.push({ role: "assistant", text: "", state: "streaming" });
    state.generating = true;
    socket!.send(
      JSON.stringify({
        type: "chat",
        conversation_id: state.conversationId,
        content,
        client_msg_id: randomId(),
      }),
    );
  }

  function stop(): void {
    socket?.send(JSON.stringify({ type: "stop" }));
  }

  function newConversation(): void {
    state.conversationId = null;
    state.turns = [];
  }

  function close(): void {
    socket?.close(1000);
    socket = null;
  }

  return { state, ensureOpen, send, stop, newConversation, close };
}
