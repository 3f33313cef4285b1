// Types for the non-TypeScript modules the site's theme imports (Vite compiles them).
declare module '*.vue' {
  import type { DefineComponent } from 'vue';

  const component: DefineComponent;
  export default component;
}
declare module '*.css';
