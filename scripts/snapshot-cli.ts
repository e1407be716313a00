/**
 * `npm run snapshot -- list | inspect | export | import`: the operator CLI (entry src/app/snapshot-cli.ts,
 * commands in src/adapters/cli/snapshot-cli.ts; see there and docs/snapshots.md). In the container
 * image: `node dist/app/snapshot-cli.js ...`.
 */
import { runAsProcess } from '../src/app/snapshot-cli.js';

runAsProcess();
