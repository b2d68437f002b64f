// A paginated list loaded from the API: the page, its rows, the total, and a reload.
import { ref, type Ref } from "vue";
import { api, type Query } from "./api";
import type { Page } from "./types";

export interface Paged<T> {
  items: Ref<T[]>;
  total: Ref<number>;
  page: Ref<number>;
  pageSize: Ref<number>;
  loading: Ref<boolean>;
  load: (page?: number) => Promise<void>;
}

/** Rows of `path` for the current page, with `filters()` added to the query on each load. */
export function usePaged<T>(
  path: string | (() => string),
  filters: () => Query = () => ({}),
): Paged<T> {
  const items = ref<T[]>([]) as Ref<T[]>;
  const total = ref(0);
  const page = ref(1);
  const pageSize = ref(20);
  const loading = ref(false);

  async function load(to?: number): Promise<void> {
    if (to !== undefined) page.value = to;
    loading.value = true;
    try {
      const url = typeof path === "string" ? path : path();
      const answer = await api.get<Page<T>>(url, {
        ...filters(),
        page: page.value,
        page_size: pageSize.value,
      });
      items.value = answer.items;
      total.value = answer.total;
    } finally {
      loading.value = false;
    }
  }

  return { items, total, page, pageSize, loading, load };
}
