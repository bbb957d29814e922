/**
 * Registry access for pull and push (their --creds, --authfile, --tls-verify, --cert-dir) and
 * the login and logout commands, which keep credentials in the auth file podman and skopeo
 * read (docs/cli.md "Registries").
 */
import { InvalidArgumentError } from "../errors.ts";
import type { CommandContext, CommandDef, OptionDef } from "./command.ts";
import { stringOption } from "./common.ts";

const AUTHFILE_OPTION: OptionDef = { names: ["authfile"], type: "string", description: "Auth file to use (default: $REGISTRY_AUTH_FILE, else podman's: $XDG_RUNTIME_DIR/containers/auth.json, ...)", valueHint: "file" };
const TLS_OPTIONS: OptionDef[] = [
  { names: ["tls-verify"], type: "bool", defaultValue: "true", description: "Require HTTPS and verify certificates (false also allows plain http)" },
  { names: ["cert-dir"], type: "string", description: "Directory with *.crt CA certificates and *.cert/*.key client certificates for the registry", valueHint: "directory" },
];

/** The registry options pull and push take. */
export const REGISTRY_OPTIONS: OptionDef[] = [
  { names: ["creds"], type: "string", description: "USER[:PASSWORD] for the registry (docker://)" },
  AUTHFILE_OPTION,
  ...TLS_OPTIONS,
];

/** The docker:// settings the command line gave (the store-dependent parts added by the caller). */
export function registryOptions(ctx: CommandContext) {
  return {
    creds: stringOption(ctx, "creds"),
    authFile: stringOption(ctx, "authfile"),
    verify: ctx.options["tls-verify"] === true,
    certDir: stringOption(ctx, "cert-dir"),
    debug: ctx.debug,
  };
}

/** The password from -p or --password-stdin (without its final newline). */
async function passwordOf(ctx: CommandContext): Promise<string | undefined> {
  const given = stringOption(ctx, "password");
  if (ctx.options["password-stdin"] === true) {
    if (given !== undefined) throw new InvalidArgumentError("--password and --password-stdin are mutually exclusive");
    return new TextDecoder().decode(await Bun.stdin.arrayBuffer()).replace(/\r?\n$/, "");
  }
  return given;
}

export const login: CommandDef = {
  names: ["login"],
  synopsis: "[options [...]] REGISTRY[/REPOSITORY]",
  description: "Check credentials with a registry and keep them in the auth file",
  minArgs: 1,
  maxArgs: 1,
  needsStore: false,
  options: [
    { names: ["username", "u"], type: "string", description: "User name" },
    { names: ["password", "p"], type: "string", description: "Password (visible to other users in the process list; prefer --password-stdin)" },
    { names: ["password-stdin"], type: "bool", description: "Read the password from standard input" },
    AUTHFILE_OPTION,
    ...TLS_OPTIONS,
  ],
  async run(ctx) {
    const { RegistryClient } = await import("../transports/registry/client.ts");
    const { findCredentials, loginKey, storeCredentials } = await import("../transports/registry/credentials.ts");
    const key = loginKey(ctx.args[0]!);
    const [host, ...path] = key.split("/");
    const options = registryOptions(ctx);
    const username = stringOption(ctx, "username");
    const password = await passwordOf(ctx);
    if (username === undefined && password === undefined) {
      const existing = findCredentials(host!, path.join("/"), options);
      if (!existing) throw new InvalidArgumentError(`login ${key}: no credentials given (use -u USER with -p PASSWORD or --password-stdin)`);
      await new RegistryClient(host!, path.join("/"), options).checkCredentials();
      ctx.stdout(`Already logged in to ${key}\n`);
      return 0;
    }
    if (!username) throw new InvalidArgumentError(`login ${key}: a user name is needed (-u USER)`);
    if (password === undefined || password === "") throw new InvalidArgumentError(`login ${key}: a password is needed (-p PASSWORD or --password-stdin)`);
    const credentials = { username, password };
    await new RegistryClient(host!, path.join("/"), { ...options, creds: `${username}:${password}` }).checkCredentials();
    storeCredentials(key, credentials, options);
    ctx.stdout("Login Succeeded!\n");
    return 0;
  },
};

export const logout: CommandDef = {
  names: ["logout"],
  synopsis: "[options [...]] REGISTRY[/REPOSITORY] | --all",
  description: "Remove a registry's credentials from the auth file",
  minArgs: 0,
  maxArgs: 1,
  needsStore: false,
  options: [{ names: ["all", "a"], type: "bool", description: "Remove the credentials of every registry" }, AUTHFILE_OPTION],
  async run(ctx) {
    const { loginKey, removeAllCredentials, removeCredentials } = await import("../transports/registry/credentials.ts");
    const options = { authFile: stringOption(ctx, "authfile") };
    if (ctx.options.all === true) {
      if (ctx.args.length > 0) throw new InvalidArgumentError("logout: --all takes no registry");
      removeAllCredentials(options);
      ctx.stdout("Removed login credentials for all registries\n");
      return 0;
    }
    if (ctx.args.length === 0) throw new InvalidArgumentError("logout: name a registry, or use --all");
    const key = loginKey(ctx.args[0]!);
    removeCredentials(key, options);
    ctx.stdout(`Removed login credentials for ${key}\n`);
    return 0;
  },
};
