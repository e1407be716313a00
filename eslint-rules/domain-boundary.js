// @ts-check
/**
 * A local ESLint plugin with one rule, `domain-boundary/no-escape`: a file under the domain root may
 * name only modules that are themselves under the domain root. Every module reference is checked:
 * `import`, `import type`, `export ... from`, `import()`, `import x = require()`, `import('...')`
 * types, `declare module '...'` and `/// <reference>` comments. A relative specifier is resolved
 * against the file's own directory, so the depth of `../` does not matter; anything else (a package,
 * a `node:` or bare built-in, an absolute path, a URL) leaves the domain by definition.
 * Used by eslint-rules/layer-rule.js.
 */
import path from 'node:path';

/**
 * @param {string} specifier
 * @returns {boolean}
 */
function isRelative(specifier) {
  return specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../');
}

/**
 * @param {string} specifier
 * @returns {string} which messageId describes a non-relative specifier
 */
function kindOf(specifier) {
  if (specifier.startsWith('node:')) return 'builtin';
  if (path.isAbsolute(specifier) || /^[a-z][a-z0-9+.-]*:/i.test(specifier)) return 'absolute';
  return 'bare';
}

/** @type {import('eslint').Rule.RuleModule} */
const noEscape = {
  meta: {
    type: 'problem',
    docs: { description: 'Refuse any module reference that leaves the domain root' },
    schema: [
      {
        type: 'object',
        properties: { root: { type: 'string' } },
        required: ['root'],
        additionalProperties: false,
      },
    ],
    messages: {
      leaves: "'{{specifier}}' resolves to {{target}}, outside {{root}}: the domain imports only the domain.",
      bare: "'{{specifier}}' is a package or a built-in: the domain imports only the domain (use a port).",
      builtin: "'{{specifier}}' is a Node built-in: the domain imports only the domain (use a port).",
      absolute: "'{{specifier}}' is an absolute path or URL: the domain imports only the domain.",
      computed: 'A module specifier that is not a plain string cannot be checked: the domain imports only the domain.',
      reference: "'/// <reference {{what}}>' reaches outside the domain: the domain imports only the domain.",
    },
  },

  create(context) {
    const root = path.resolve(/** @type {{ root: string }} */ (context.options[0]).root);
    const filename = context.physicalFilename;
    // Files outside the root (a misconfigured `files` glob) are not this rule's business.
    if (!within(root, path.resolve(filename))) return {};
    const directory = path.dirname(path.resolve(filename));

    /**
     * @param {import('estree').Node} node where to report
     * @param {string} specifier
     */
    function check(node, specifier) {
      if (!isRelative(specifier)) {
        context.report({ node, messageId: kindOf(specifier), data: { specifier } });
        return;
      }
      const target = path.resolve(directory, specifier);
      if (!within(root, target)) {
        context.report({
          node,
          messageId: 'leaves',
          data: { specifier, target: path.relative(context.cwd, target) || '.', root: path.relative(context.cwd, root) || '.' },
        });
      }
    }

    /**
     * A string literal (or a template literal without expressions) is checked; anything else is refused.
     * @param {any} source
     * @param {import('estree').Node} node
     */
    function checkSource(source, node) {
      if (source?.type === 'Literal' && typeof source.value === 'string') check(source, source.value);
      else if (source?.type === 'TemplateLiteral' && source.expressions.length === 0) check(source, source.quasis[0].value.cooked);
      else context.report({ node: source ?? node, messageId: 'computed' });
    }

    return {
      Program() {
        for (const comment of context.sourceCode.getAllComments()) {
          if (comment.type !== 'Line') continue;
          const match = /^\/\s*<reference\s+(path|types|lib)\s*=\s*["']([^"']*)["']/.exec(comment.value);
          if (!match) continue;
          const [, what, value] = /** @type {[string, string, string]} */ (/** @type {unknown} */ (match));
          // `lib` names a TypeScript lib (e.g. "dom"), `types` a package: both bring in what the domain must not see.
          if (what === 'path' && isRelative(value) && within(root, path.resolve(directory, value))) continue;
          context.report({ loc: comment.loc ?? { line: 1, column: 0 }, messageId: 'reference', data: { what: `${what}="${value}"` } });
        }
      },
      ImportDeclaration(node) {
        checkSource(node.source, node);
      },
      ExportNamedDeclaration(node) {
        if (node.source) checkSource(node.source, node);
      },
      ExportAllDeclaration(node) {
        checkSource(node.source, node);
      },
      ImportExpression(node) {
        checkSource(node.source, node);
      },
      /** @param {any} node `import x = require('...')` */
      TSExternalModuleReference(node) {
        checkSource(node.expression, node);
      },
      /** @param {any} node `type T = import('...').U` */
      TSImportType(node) {
        checkSource(node.source ?? node.argument?.literal, node);
      },
      /** @param {any} node `declare module '...' { }` augments (and depends on) another module */
      TSModuleDeclaration(node) {
        if (node.id?.type === 'Literal') checkSource(node.id, node);
      },
    };
  },
};

/**
 * @param {string} root absolute
 * @param {string} target absolute
 */
function within(root, target) {
  const relative = path.relative(root, target);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}

export default {
  meta: { name: 'domain-boundary' },
  rules: { 'no-escape': noEscape },
};
