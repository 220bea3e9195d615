/**
 * Node's session context for the router: AsyncLocalStorage carries the
 * current session through every await of a request, so read-your-writes and
 * transaction ownership follow the request without passing objects around.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type RouterSession,
  type SessionContext,
  setDefaultSessionContext,
} from "../router/router-session.js";

/** A {@link SessionContext} backed by its own AsyncLocalStorage. */
export function asyncSessionContext(): SessionContext {
  const storage = new AsyncLocalStorage<RouterSession>();
  return {
    current: () => storage.getStore(),
    run: (session, fn) => storage.run(session, fn),
  };
}

let registered: SessionContext | undefined;

/**
 * Makes an AsyncLocalStorage context the default of every router created
 * without a `context` option (`pagecast/node` calls this on import).
 */
export function registerNodeSessionContext(): void {
  registered ??= asyncSessionContext();
  setDefaultSessionContext(registered);
}
