import { UsageError } from '../args.js';

export const summary = 'not yet available';

export async function run(_args: string[]): Promise<number> {
  throw new UsageError('inspect: not implemented yet');
}
