// Admin actions' shared manners: ask before what cannot be undone, show the server's errors.
import { ElMessage, ElMessageBox } from "element-plus";
import { i18n } from "./i18n";

/** Ask the admin; false when they cancel. */
export async function confirmed(message: string): Promise<boolean> {
  const t = i18n.global.t;
  try {
    await ElMessageBox.confirm(message, {
      type: "warning",
      confirmButtonText: t("common.confirm"),
      cancelButtonText: t("common.cancel"),
    });
    return true;
  } catch {
    return false;
  }
}

/** Run an API call, showing its error (the server's message) as a toast; true on success. */
export async function attempt(work: () => Promise<unknown>, done?: string): Promise<boolean> {
  try {
    await work();
    if (done) ElMessage.success(done);
    return true;
  } catch (exc) {
    ElMessage.error((exc as Error).message);
    return false;
  }
}
