/**
 * A router session: the unit of read-your-writes and of transaction
 * ownership. On Node an AsyncLocalStorage context (see `pagecast/node`)
 * carries the current session through awaits; elsewhere an explicit session
 * object is bound to its own Drizzle database.
 */
import {
  addPosition,
  decodeBookmark,
  emptyRequirement,
  encodeBookmark,
  type Requirement,
  resolveRequirement,
  type WritePosition,
} from "./write-position.js";

/** Transaction state of a session on the primary, as the statements tell it. */
interface TransactionState {
  open: boolean;
  /** The savepoint that opened the transaction (SAVEPOINT outside BEGIN), if any. */
  openedBy: string | undefined;
  /** A write ran inside the open transaction: its position is taken at commit. */
  dirty: boolean;
  /** A DDL statement ran inside the open transaction (a rollback may undo a temp table). */
  ddl: boolean;
}

/**
 * One session. Transactions started with `db.transaction()` run in a child
 * session (its own transaction identity) that shares the parent's
 * read-your-writes state.
 */
export class RouterSession {
  /** Read-your-writes state lives in the root session. */
  readonly #root: RouterSession;
  readonly #requirement: Requirement;
  readonly tx: TransactionState = { open: false, openedBy: undefined, dirty: false, ddl: false };
  /**
   * The Drizzle transaction this session runs (a transaction child): a root
   * `db.transaction()` called inside it nests as its savepoint.
   */
  drizzleTransaction: unknown;
  /** Settles once every statement issued so far in this session for the primary has. */
  #primaryTail: Promise<void> | undefined;
  /** Position resolution in flight for this session's writes (root only). */
  #resolving = false;
  /** The newest position waiting for the resolution in flight to end (root only). */
  #resolveNext: WritePosition | undefined;

  constructor(requirement: Requirement = emptyRequirement(), parent?: RouterSession) {
    this.#root = parent ? parent.#root : this;
    this.#requirement = parent ? parent.#root.#requirement : requirement;
  }

  /** A session resuming a bookmark (`undefined`/`null`/empty: a fresh session). */
  static fromBookmark(bookmark: string | null | undefined): RouterSession {
    if (bookmark === undefined || bookmark === null || bookmark === "") return new RouterSession();
    return new RouterSession(decodeBookmark(bookmark));
  }

  /** The session whose read-your-writes state this one shares (itself unless a transaction child). */
  get root(): RouterSession {
    return this.#root;
  }

  /** A child session for one transaction, sharing read-your-writes state. */
  child(): RouterSession {
    return new RouterSession(undefined, this);
  }

  /** What replicas must have reached for this session to read from them. */
  get requirement(): Readonly<Requirement> {
    return this.#requirement;
  }

  /**
   * Records a statement sent to the primary that reads must not overtake
   * (on one connection, statements run in the order they were issued).
   */
  issued(done: Promise<unknown>): void {
    const settled = done.then(
      () => {},
      () => {},
    );
    const tail = this.#primaryTail
      ? Promise.all([this.#primaryTail, settled]).then(() => {})
      : settled;
    this.#primaryTail = tail;
    tail.then(() => {
      if (this.#primaryTail === tail) this.#primaryTail = undefined;
    });
  }

  /** Settles once every statement {@link issued} so far has; `undefined` when none is in flight. */
  get inFlight(): Promise<void> | undefined {
    return this.#primaryTail;
  }

  /**
   * Coalesces position resolutions: returns true when the caller should
   * resolve `position` now; otherwise `position` is kept (only the newest) for
   * {@link resolutionDone} to hand out. Resolving a newer position also
   * covers every older one.
   */
  startResolution(position: WritePosition): boolean {
    const root = this.#root;
    if (root.#resolving) {
      root.#resolveNext = position;
      return false;
    }
    root.#resolving = true;
    return true;
  }

  /** Ends the resolution in flight; returns the position to resolve next, if any (already started). */
  resolutionDone(): WritePosition | undefined {
    const root = this.#root;
    const next = root.#resolveNext;
    root.#resolveNext = undefined;
    root.#resolving = next !== undefined;
    return next;
  }

  /** Records a committed write. */
  addPosition(position: WritePosition): void {
    addPosition(this.#requirement, position);
  }

  /** Records the exact TXID of every write committed up to `upTo`. */
  resolved(upTo: WritePosition, txid: number): void {
    resolveRequirement(this.#requirement, upTo, txid);
  }

  /** The opaque bookmark of this session's writes, for a cookie or header. */
  bookmark(): string {
    return encodeBookmark(this.#requirement);
  }
}

/**
 * Carries the current session through asynchronous work. Node's
 * implementation (AsyncLocalStorage) lives in `pagecast/node`.
 */
export interface SessionContext {
  /** The session of the running async context, if any. */
  current(): RouterSession | undefined;
  /** Runs `fn` with `session` current for everything it awaits. */
  run<T>(session: RouterSession, fn: () => T): T;
}

let defaultContext: SessionContext | undefined;

/**
 * Sets the context provider routers use when given none (`pagecast/node`
 * registers AsyncLocalStorage). `undefined` removes it.
 */
export function setDefaultSessionContext(context: SessionContext | undefined): void {
  defaultContext = context;
}

/** The registered default context provider, if any. */
export function getDefaultSessionContext(): SessionContext | undefined {
  return defaultContext;
}
