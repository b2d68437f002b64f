// Shapes of the wxgpt admin and ops API (see the server's admin_api.py and ops.py).

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  page_size: number;
}

export interface Admin {
  username: string;
  role: "admin" | "ops";
}

export interface UserRef {
  id: number;
  openid: string;
  nickname: string | null;
  avatar_url?: string | null;
}

export interface User extends UserRef {
  quota: number;
  banned: boolean;
  created_at: string;
  last_seen_at: string | null;
  message_count: number;
}

export interface LedgerEntry {
  id: number;
  delta: number;
  reason: string;
  actor: string | null;
  note: string | null;
  created_at: string;
}

export interface Conversation {
  id: number;
  title: string;
  user: UserRef;
  created_at: string;
  updated_at: string;
  message_count: number;
}

export type MessageStatus =
  "complete" | "stopped" | "interrupted" | "failed" | "generating" | "blocked";

export interface Message {
  id: number;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  finish_reason: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  first_token_ms: number | null;
  duration_ms: number | null;
  created_at: string;
}

export interface Transcript {
  conversation: Conversation;
  messages: Message[];
}

export interface Stats {
  users: number;
  conversations: number;
  messages_today: number;
  messages_7d: number;
  tokens_generated: number;
  per_day: { date: string; messages: number }[];
  blocked_per_day: { date: string; blocked: number }[];
  revenue_per_day: { date: string; fen: number }[];
  model: {
    name: string | null;
    device: string | null;
    status: "loading" | "ready" | "failed";
    error: string | null;
  };
}

export const SETTING_NAMES = [
  "temperature",
  "top_k",
  "top_p",
  "repetition_penalty",
  "max_new_tokens",
  "history_turns",
  "default_quota",
  "daily_free",
  "invite_reward",
  "invite_daily_cap",
] as const;

export type SettingName = (typeof SETTING_NAMES)[number];

export interface SettingsAnswer {
  values: Record<SettingName, number>;
  limits: Record<SettingName, { min: number | null; max: number | null }>;
}

export interface Product {
  id: number;
  name: string;
  replies: number;
  price_fen: number;
  active: boolean;
}

export type OrderState = "pending" | "paid" | "closed" | "refunded";

export interface Order {
  id: number;
  out_trade_no: string;
  product_name: string;
  replies: number;
  amount_fen: number;
  state: OrderState;
  transaction_id: string | null;
  user: { id: number; nickname: string } | null;
  created_at: string;
  paid_at: string | null;
  expires_at: string;
  closed_at: string | null;
  refunded_at: string | null;
}

export interface AuditEntry {
  id: number;
  admin: string;
  action: string;
  target: string;
  detail: unknown;
  created_at: string;
}

export type SocketState = "idle" | "queued" | "generating";

export interface SocketRow {
  id: string;
  replica: string;
  user: UserRef;
  remote: string;
  connected_at: string;
  state: SocketState;
  queue_position: number | null;
  tokens: number;
  tokens_per_s: number | null;
  bytes_in: number;
  bytes_out: number;
  last_activity: string;
}

export interface ReplicaState {
  id: string;
  coordination: string;
  up: boolean;
  reason: string | null;
}

export interface EngineState {
  model: string | null;
  device: string | null;
  engine: string;
  ready: boolean;
  reason: string | null;
  slots: number;
  running: number;
  queue_depth: number;
  tokens_per_s_1m: number;
}

export interface ProcessState {
  cpu_percent: number;
  rss_bytes: number;
}

export interface OpsSnapshot {
  type: "snapshot";
  sockets: SocketRow[];
  replica: ReplicaState;
  engine: EngineState;
  process: ProcessState;
  t: string;
}

export interface OpsDelta {
  type: "delta";
  upsert: SocketRow[];
  remove: string[];
  replica: ReplicaState;
  engine: EngineState;
  process: ProcessState;
  t: string;
}

export type CaseKind = "input" | "output" | "profile" | "report";
export type CaseState = "open" | "dismissed" | "banned";

export interface ModerationCase {
  id: number;
  kind: CaseKind;
  user: UserRef & { banned: boolean };
  conversation_id: number | null;
  message: Message | null;
  content: string;
  checker: string | null;
  verdict: string;
  label: string;
  note: string;
  state: CaseState;
  resolved_by: string | null;
  resolved_at: string | null;
  created_at: string;
}

export interface WordList {
  words: string[];
  max_words: number;
  max_word_chars: number;
}
