// Lint rules for the TypeScript sources; formatting is prettier's job (npm run format).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'artifacts/',
      'cache/',
      'types/',
      'coverage/',
      '.pov/',
      // generated: protons (npm run proto) and chain/gen-abi.ts
      'protocol/expert.ts',
      'chain/abi/types.ts'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // plain-JavaScript launchers (cli/pov.mjs, cli/build.mjs) run on Node
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly' } }
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { disallowTypeAnnotations: false }],
      '@typescript-eslint/no-explicit-any': 'warn',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'preserve-caught-error': 'warn',
      'no-constant-condition': ['error', { checkLoops: false }]
    }
  }
)
