// Entry point of the `nibble` executable.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
