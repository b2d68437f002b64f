// Who is logged in; filled from /api/admin/me or the login answer.
import { computed, ref } from "vue";
import { api } from "./api";
import type { Admin } from "./types";

export const currentAdmin = ref<Admin | null>(null);
export const canWrite = computed(() => currentAdmin.value?.role === "admin");

/** The logged-in admin, asking the server once per page load; null without a session. */
export async function loadAdmin(): Promise<Admin | null> {
  if (currentAdmin.value) return currentAdmin.value;
  try {
    currentAdmin.value = await api.get<Admin>("/api/admin/me");
  } catch {
    currentAdmin.value = null;
  }
  return currentAdmin.value;
}

export async function login(username: string, password: string): Promise<void> {
  const answer = await api.post<{ admin: Admin }>("/api/admin/login", { username, password });
  currentAdmin.value = answer.admin;
}

export async function logout(): Promise<void> {
  try {
    await api.post("/api/admin/logout");
  } finally {
    currentAdmin.value = null;
  }
}
