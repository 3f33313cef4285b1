// The default VitePress theme plus the live demo component and a few styles for generated charts and diagrams.
import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import NibbleDemo from './NibbleDemo.vue';
import './custom.css';

const theme: Theme = {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('NibbleDemo', NibbleDemo);
  },
};
export default theme;
