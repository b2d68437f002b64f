// Pages under /admin/; every page but login needs a session.
import { createRouter, createWebHistory } from "vue-router";
import { setUnauthorizedHandler } from "./api";
import { currentAdmin, loadAdmin } from "./session";
import Layout from "./components/Layout.vue";

export const router = createRouter({
  history: createWebHistory(import.meta.env.BASE_URL),
  routes: [
    { path: "/login", name: "login", component: () => import("./views/Login.vue") },
    {
      path: "/",
      component: Layout,
      children: [
        { path: "", redirect: { name: "dashboard" } },
        { path: "dashboard", name: "dashboard", component: () => import("./views/Dashboard.vue") },
        { path: "users", name: "users", component: () => import("./views/Users.vue") },
        {
          path: "users/:id(\\d+)",
          name: "user",
          component: () => import("./views/UserDetail.vue"),
          props: (route) => ({ id: Number(route.params.id) }),
        },
        {
          path: "conversations",
          name: "conversations",
          component: () => import("./views/Conversations.vue"),
        },
        {
          path: "conversations/:id(\\d+)",
          name: "conversation",
          component: () => import("./views/ConversationDetail.vue"),
          props: (route) => ({ id: Number(route.params.id) }),
        },
        { path: "settings", name: "settings", component: () => import("./views/Settings.vue") },
        { path: "store", name: "store", component: () => import("./views/Store.vue") },
        {
          path: "playground",
          name: "playground",
          component: () => import("./views/Playground.vue"),
        },
        {
          path: "moderation",
          name: "moderation",
          component: () => import("./views/Moderation.vue"),
        },
        { path: "audit", name: "audit", component: () => import("./views/Audit.vue") },
        { path: "ops", name: "ops", component: () => import("./views/Ops.vue") },
        { path: ":unknown(.*)*", redirect: { name: "dashboard" } },
      ],
    },
  ],
});

router.beforeEach(async (to) => {
  if (to.name === "login") return true;
  if (await loadAdmin()) return true;
  return { name: "login", query: { redirect: to.fullPath } };
});

setUnauthorizedHandler(() => {
  currentAdmin.value = null;
  const here = router.currentRoute.value;
  if (here.name !== "login") router.push({ name: "login", query: { redirect: here.fullPath } });
});
