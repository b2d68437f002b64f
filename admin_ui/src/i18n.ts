// Interface language: Chinese by default, English on request; the choice is kept in localStorage.
import { computed } from "vue";
import { createI18n } from "vue-i18n";
import zhCn from "element-plus/es/locale/lang/zh-cn";
import en from "element-plus/es/locale/lang/en";
import { messages, type Lang } from "./messages";

const STORAGE_KEY = "wxgpt.admin.lang";

function storedLang(): Lang {
  return localStorage.getItem(STORAGE_KEY) === "en" ? "en" : "zh-CN";
}

export const i18n = createI18n({
  legacy: false,
  locale: storedLang(),
  fallbackLocale: "zh-CN",
  messages,
});

export const elementLocale = computed(() => (i18n.global.locale.value === "en" ? en : zhCn));

export function setLang(lang: Lang): void {
  i18n.global.locale.value = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
}
