/** Moved to src/app/config/ (this re-export goes once every importer points there). */
export * from './config/index.js';
