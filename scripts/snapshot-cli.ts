/**
 * `npm run snapshot -- list | inspect | export | import`: the operator CLI of src/app/snapshot-cli.ts
 * (see there and docs/snapshots.md). In the container image: `node dist/app/snapshot-cli.js ...`.
 */
import { runAsProcess } from '../src/app/snapshot-cli.js';

runAsProcess();
