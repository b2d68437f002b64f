// Who is logged in; filled from /api/admin/me or the login answer.
import { computed, ref } from "vue";
import { api, setCsrfToken } from "./api";
import type { Admin } from "./types";

export const currentAdmin = ref<Admin | null>(null);
export const canWrite = computed(() => currentAdmin.value?.role === "admin");

/** The logged-in admin, asking the server once per page load; null without a session. */
export async function loadAdmin(): Promise<Admin | null> {
  if (currentAdmin.value) return currentAdmin.value;
  try {
    const me = await api.get<Admin & { csrf_token: string }>("/api/admin/me");
    setCsrfToken(me.csrf_token);
    currentAdmin.value = { username: me.username, role: me.role };
  } catch {
    currentAdmin.value = null;
  }
  return currentAdmin.value;
}

export async function login(username: string, password: string): Promise<void> {
  const answer = await api.post<{ admin: Admin; csrf_token: string }>("/api/admin/login", {
    username,
    password,
  });
  setCsrfToken(answer.csrf_token);
  currentAdmin.value = answer.admin;
}

export async function logout(): Promise<void> {
  try {
    await api.post("/api/admin/logout");
  } finally {
    setCsrfToken("");
    currentAdmin.value = null;
  }
}
