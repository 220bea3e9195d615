/** Time travel: read-only Drizzle databases pinned at a past moment. */

export {
  type PastDatabase,
  type SchemaOf,
  type TimeTravelOptions,
  type TimeTravelSource,
  timeTravel,
} from "./time-travel.js";
export { TimeTravelError } from "./time-travel-error.js";
export { type ParsedWhen, parseWhen, type When } from "./when.js";
