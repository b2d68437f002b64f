import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";

// The server mounts the build at /admin/; in `npm run dev` the API and sockets are proxied
// to a wxgpt server on its default address.
const server = "http://127.0.0.1:8000";

export default defineConfig({
  base: "/admin/",
  plugins: [vue()],
  build: {
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      "/api": { target: server, changeOrigin: true },
      "/ws": { target: server, ws: true, changeOrigin: true },
    },
  },
});
