// fetch() against the wxgpt API with the admin session cookie; a 401 anywhere leads to login.
// Every change carries the session's CSRF token in a header, which the server requires of
// cookie-authenticated changes: a page of another origin can send the cookie, not the header.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};
let csrfToken = "";

/** The CSRF token of the current session (from the login answer or /api/admin/me). */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called by the app once the router exists: where a 401 sends the admin. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export interface Query {
  [key: string]: string | number | null | undefined;
}

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(withQuery(path, query), {
    method,
    credentials: "same-origin",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? { code: "http_" + response.status, message: response.statusText };
    if (response.status === 401 && path !== "/api/admin/login") onUnauthorized();
    throw new ApiError(response.status, error.code, error.message);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", path, undefined, query),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body ?? {}),
  put: <T>(path: string, body: unknown) => request<T>("PUT", path, body),
  patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, body),
  delete: (path: string) => request<void>("DELETE", path),
};

/** The ws:// or wss:// URL of a server path, on the page's own host. */
export function socketUrl(path: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** The URL that opens `/ws/ops` or `/ws/chat` (as the playground user) with a fresh single-use
 * ticket: the session itself never goes into a URL, where logs would keep it. */
export async function ticketedSocketUrl(socket: "ops" | "chat"): Promise<string> {
  const { ticket } = await api.post<{ ticket: string }>("/api/admin/ws-ticket", { socket });
  return socketUrl(`/ws/${socket}?ticket=${encodeURIComponent(ticket)}`);
}
