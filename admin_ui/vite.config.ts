import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// The server mounts the build at /admin/; in `npm run dev` the API and sockets are proxied
// to a wxgpt server on its default address, as if the page were its own (the server refuses
// changes and sockets from other origins).
const server = "http://127.0.0.1:8000";
const asServer = { target: server, changeOrigin: true, headers: { origin: server } };

export default defineConfig({
  base: "/admin/",
  plugins: [vue()],
  build: {
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": asServer,
      "/ws": { ...asServer, ws: true },
    },
  },
});
