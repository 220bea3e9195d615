import { main } from "../../src/cli/main.js";

/** Runs the CLI in-process and captures its output. */
export async function runCli(
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    isTTY: false,
    env,
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}
