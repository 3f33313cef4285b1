export type { Command } from './main.js';
export { main } from './main.js';
