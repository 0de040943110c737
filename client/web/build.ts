// Bundles the page's script with esbuild — placeholder until the page lands.
console.log('page build: nothing to build yet');
