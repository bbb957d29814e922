/** Shell scripts imported as text (`with { type: "text" }`), embedded in the binary by bun build. */
declare module "*.bash" {
  const text: string;
  export default text;
}
declare module "*.zsh" {
  const text: string;
  export default text;
}
declare module "*.fish" {
  const text: string;
  export default text;
}
