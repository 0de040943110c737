// `tuspass push FILE...` — placeholder until the client lands.
export async function push(_argv: string[]): Promise<number> {
  console.error('tuspass push: not built yet');
  return 2;
}
