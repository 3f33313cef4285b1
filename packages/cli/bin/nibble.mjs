#!/usr/bin/env node
// The installed `nibble` executable. In the repository, `pnpm nibble` runs the TypeScript source instead.
import '../dist/cli.js';
