// Types for the non-TypeScript modules the site's theme imports (Vite compiles them).
declare module '*.vue' {
  import type { DefineComponent } from 'vue';

  const component: DefineComponent;
  export default component;
}
declare module '*.css';
// Vite's worker URL import: the bundled worker's URL.
declare module '*?worker&url' {
  const url: string;
  export default url;
}
// Vite's import.meta.glob (vite/client has it; the theme needs only this).
interface ImportMeta {
  glob(pattern: string): Record<string, () => Promise<unknown>>;
}
