// vega-lite publishes its types only through package exports, which moduleResolution "node"
// does not read; this points the type checker at them (types only: nothing changes at run time).
declare module 'vega-lite' {
  export * from 'vega-lite/build/index';
}
