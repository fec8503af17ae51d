// The Review page's reading viewer: Cornerstone3D's stack viewport and tools inside a Streamlit component.
//
// The page sends the scan's stored values losslessly (medattn/screens/viewer.py) and, when the model's
// output is shown, the overlay medattn made for the report (RGBA: the heat, and outlines over it), so the viewer
// draws what leaves the app. Windowing, zoom, pan, measuring, the overlay switch and its opacity happen here
// without waiting for the page (the opacity is told to it afterwards, for the report); what a reader set
// is kept per scan in the tab's sessionStorage, so it survives a visit to another page. A reader's mark (where
// they see a finding) is drawn with Cornerstone's tools and handed to the page in the scan's pixels, which keeps
// it with the review; the page sends every mark back, and they are drawn over the scan.
import {
  cache,
  eventTarget,
  init as coreInit,
  Enums,
  RenderingEngine,
  imageLoader,
  metaData,
  utilities,
} from '@cornerstonejs/core';
import {
  init as toolsInit,
  addTool,
  annotation,
  AngleTool,
  EllipticalROITool,
  Enums as ToolEnums,
  LengthTool,
  PanTool,
  PlanarFreehandROITool,
  ProbeTool,
  RectangleROITool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
} from '@cornerstonejs/tools';

const { MouseBindings } = ToolEnums;
const ENGINE = 'medattn-engine';
const VIEWPORT = 'medattn-viewport';
const GROUP = 'medattn-tools';
// The tools the left button can take, by key. Right drag zooms and middle drag pans whatever is chosen.
const PRIMARY_TOOLS = {
  w: [WindowLevelTool.toolName, 'Window'],
  l: [LengthTool.toolName, 'Length'],
  a: [AngleTool.toolName, 'Angle'],
  e: [EllipticalROITool.toolName, 'ROI'],
  p: [PanTool.toolName, 'Pan'],
  // A reader's marks, offered while the page asks for them; no key of their own (buttons only).
  'mark-point': [ProbeTool.toolName, 'Point'],
  'mark-box': [RectangleROITool.toolName, 'Box'],
  'mark-outline': [PlanarFreehandROITool.toolName, 'Outline'],
};
// What each marking tool's annotation becomes: medattn.review.marks' kinds.
const MARK_KINDS = {
  [ProbeTool.toolName]: 'point',
  [RectangleROITool.toolName]: 'box',
  [PlanarFreehandROITool.toolName]: 'outline',
};
const MARK_COLOURS = ['#22d3ee', '#facc15', '#f472b6', '#a3e635'];
const MOST_OUTLINE_POINTS = 500; // a freehand outline is thinned to this many vertices
const TOOLS = [
  WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool, AngleTool, EllipticalROITool, ProbeTool,
  RectangleROITool, PlanarFreehandROITool,
];

const element = document.getElementById('viewport');
const overlayCanvas = document.getElementById('overlay');
const readout = document.getElementById('readout');
const windowText = document.getElementById('window');
const toolbar = document.getElementById('toolbar');
const overlayButton = document.getElementById('overlay-button');
const opacityControl = document.getElementById('opacity-control');
const opacityInput = document.getElementById('opacity');
const markingTools = document.getElementById('marking');
const markingFor = document.getElementById('marking-for');

// Each image's metadata modules, served by one provider; a scan's entries go when another scan replaces it.
const modulesOf = new Map();
const shown = {
  scan: null, overlay: null, overlayOn: true, pageWindow: null, unit: '', inverted: false, tool: 'w',
  opacity: 0.45, pageOpacity: null, // the heat's opacity, and the page's, which wins when it changes
  marking: null, // the page's marks and the finding a new one is for; null where the page takes no marks
  drawn: null, // a mark just drawn, shown until the page sends it back among its marks
};
let engine = null;
let viewport = null;
let ready = null;

function post(type, data = {}) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, '*');
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const TYPED = { uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, float32: Float32Array };

async function start() {
  await coreInit();
  toolsInit();
  metaData.addProvider((type, imageId) => modulesOf.get(imageId)?.[type], 10000);
  TOOLS.forEach(addTool);
  engine = new RenderingEngine(ENGINE);
  engine.enableElement({
    viewportId: VIEWPORT,
    type: Enums.ViewportType.STACK,
    element,
    defaultOptions: { background: [0, 0, 0] },
  });
  viewport = engine.getViewport(VIEWPORT);
  window.medattn = { viewport }; // for the browser tests and the console, as OHIF exposes cornerstone
  const group = ToolGroupManager.createToolGroup(GROUP);
  for (const tool of TOOLS) group.addTool(tool.toolName);
  group.addViewport(VIEWPORT, ENGINE);
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  chooseTool('w');
  element.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
  element.addEventListener('mousemove', onHover);
  element.addEventListener('mouseleave', () => (readout.textContent = ''));
  // Fitted anew when the space changes (the page above the viewer is still being drawn, or the window resized),
  // unless the reader has zoomed or panned: their view is kept.
  new ResizeObserver(fitViewport).observe(element);
  // The viewer's height follows its place on the page: what was above it when it was drawn (the last run's
  // notices, kept on screen until the run ends) may go, and the viewer then starts higher up.
  try {
    const page = window.frameElement.ownerDocument.querySelector('[data-testid=stMainBlockContainer]');
    if (page) new ResizeObserver(() => shown.fill && fitHeight(shown.fill)).observe(page);
  } catch {
    // not framed by the app
  }
  element.addEventListener('pointerdown', (event) => {
    if (event.button !== 0 || shown.tool === 'p') shown.zoomed = true; // right drag zooms, middle drag pans
  });
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, (event) => onMarked(event.detail.annotation));
}

// A marking tool's annotation is the reader's mark: it goes to the page in the scan's pixels (x, y from the image's
// top-left corner, pixel i spanning i to i + 1, as medattn.review.marks keeps it) and leaves Cornerstone's state;
// the page's marks are drawn over the scan instead (drawMarks), so a mark shows as it is kept.
function onMarked(drawn) {
  const kind = MARK_KINDS[drawn.metadata.toolName];
  if (!kind) return; // a measurement: it stays where it is
  annotation.state.removeAnnotation(drawn.annotationUID);
  viewport.render();
  const frame = shown.first + viewport.getCurrentImageIdIndex();
  if (!shown.marking) return;
  if (frame !== shown.pageFrame) {
    readout.textContent = `Marks belong to the frame the model read: go back to frame ${shown.pageFrame + 1} to mark.`;
    return;
  }
  const { imageData } = viewport.getImageData();
  const inScan = (world) => imageData.worldToIndex(world).slice(0, 2).map((index) => round2(index + 0.5));
  let points;
  if (kind === 'point') points = [inScan(drawn.data.handles.points[0])];
  else if (kind === 'box') {
    const corners = drawn.data.handles.points.map(inScan);
    const xs = corners.map(([x]) => x);
    const ys = corners.map(([, y]) => y);
    points = [[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]];
    if (points[1][0] - points[0][0] < 1 || points[1][1] - points[0][1] < 1) return; // a click, not a box
  } else {
    const outline = drawn.data.contour.polyline;
    const step = Math.ceil(outline.length / MOST_OUTLINE_POINTS);
    points = outline.filter((_, index) => index % step === 0).map(inScan);
    if (points.length < 3) return;
  }
  shown.drawn = { finding: shown.marking.for, label: shown.marking.label, kind, points };
  drawOverlay();
  say({ ...shown.drawn, scan: shown.scan, frame });
}

function round2(value) {
  return Math.round(value * 100) / 100;
}

function chooseTool(key) {
  const group = ToolGroupManager.getToolGroup(GROUP);
  for (const [name] of Object.values(PRIMARY_TOOLS)) {
    if (name !== PanTool.toolName) group.setToolPassive(name);
  }
  group.setToolActive(PRIMARY_TOOLS[key][0], {
    bindings: [{ mouseButton: MouseBindings.Primary }],
  });
  if (PRIMARY_TOOLS[key][0] !== PanTool.toolName) {
    group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  }
  shown.tool = key;
  for (const button of toolbar.querySelectorAll('[data-tool]')) {
    button.setAttribute('aria-pressed', String(button.dataset.tool === key));
  }
}

function addImage(imageId, scalarData, args) {
  const [rowSpacing, columnSpacing] = args.spacing || [1, 1];
  const colour = args.colour;
  const modules = {
    imagePixelModule: {
      bitsAllocated: colour ? 8 : scalarData.BYTES_PER_ELEMENT * 8,
      bitsStored: colour ? 8 : scalarData.BYTES_PER_ELEMENT * 8,
      highBit: colour ? 7 : scalarData.BYTES_PER_ELEMENT * 8 - 1,
      pixelRepresentation: scalarData instanceof Int16Array ? 1 : 0,
      samplesPerPixel: colour ? 3 : 1,
      // MONOCHROME1 is shown by inverting the grey ramp (below), as medattn.scan.windowing does.
      photometricInterpretation: colour ? 'RGB' : 'MONOCHROME2',
      rows: args.rows,
      columns: args.columns,
    },
    imagePlaneModule: {
      rows: args.rows,
      columns: args.columns,
      rowPixelSpacing: rowSpacing,
      columnPixelSpacing: columnSpacing,
      pixelSpacing: [rowSpacing, columnSpacing],
      imagePositionPatient: [0, 0, 0],
      imageOrientationPatient: [1, 0, 0, 0, 1, 0],
      rowCosines: [1, 0, 0],
      columnCosines: [0, 1, 0],
      frameOfReferenceUID: 'medattn',
    },
    generalSeriesModule: { modality: args.modality },
    voiLutModule: { windowCenter: [args.window[0]], windowWidth: [args.window[1]] },
    modalityLutModule: { rescaleSlope: 1, rescaleIntercept: 0 },
  };
  // Lengths and areas are in mm only where the file gives a Pixel Spacing; otherwise Cornerstone says px.
  if (!args.spacing) delete modules.imagePlaneModule.pixelSpacing;
  modulesOf.set(imageId, modules);
  const image = imageLoader.createAndCacheLocalImage(imageId, {
    scalarData,
    dimensions: [args.columns, args.rows],
    spacing: [columnSpacing, rowSpacing],
    origin: [0, 0, 0],
    direction: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    frameOfReferenceUID: 'medattn',
  });
  // A local image starts with a window of width 0, from which Cornerstone builds a reversed grey ramp that
  // later windows only move: every scan was drawn inverted. It starts from the page's window instead.
  [image.windowCenter, image.windowWidth] = args.window;
}

function voiOf([centre, width]) {
  return { lower: centre - width / 2, upper: centre + width / 2 };
}

function saved() {
  try {
    return JSON.parse(sessionStorage.getItem(`medattn-viewer:${shown.scan}`)) || {};
  } catch {
    return {};
  }
}

function keep() {
  if (!shown.scan || !viewport) return;
  const camera = viewport.getCamera();
  const { voiRange } = viewport.getProperties();
  const state = {
    pageWindow: shown.pageWindow,
    pageFrame: shown.pageFrame,
    index: viewport.getCurrentImageIdIndex(),
    voiRange,
    camera,
    zoomed: shown.zoomed,
    overlayOn: shown.overlayOn,
    tool: shown.tool,
  };
  sessionStorage.setItem(`medattn-viewer:${shown.scan}`, JSON.stringify(state));
}

async function render(args) {
  await ready;
  // The toolbar's buttons and the viewer's height first, and the canvas fitted to them now, not when the resize is
  // observed: that comes after the image is drawn, and draws it again (40 ms of a 2k scan's first paint).
  overlayButton.hidden = opacityControl.hidden = !args.overlay;
  document.body.dataset.pageOpacity = String(args.opacity); // what the page last heard, for the benchmarks
  if (shown.saying !== undefined) {
    // An opacity told to the page and not yet heard back: a run that began before it brings the one before,
    // which would move the slider back under the reader's hand.
    if (args.opacity === shown.saying) shown.saying = undefined;
  } else if (args.opacity !== undefined && args.opacity !== shown.pageOpacity) {
    shown.pageOpacity = shown.opacity = args.opacity;
    opacityInput.value = String(args.opacity);
  }
  setMarking(args.marking);
  fitHeight(args.fill);
  fitViewport();
  if (!args.scan) return; // no scan yet: loaded and waiting
  if (args.scan !== shown.scan && !args.pixels) {
    say({ lacks: args.scan }); // the page took this viewer for one that holds the scan: it sends them on hearing
    return;
  }
  if (args.scan !== shown.scan) {
    keep();
    for (const imageId of modulesOf.keys()) {
      cache.removeImageLoadObject(imageId, { force: true }); // the scan before: shown again, it is added again
      modulesOf.delete(imageId);
    }
    shown.scan = args.scan;
    shown.unit = args.unit;
    shown.inverted = args.inverted;
    shown.first = args.first;
    shown.frames = args.frames;
    const pixels = args.pixels; // a view into Streamlit's message: each frame is copied out of it
    const frameBytes = pixels.byteLength / args.frames;
    const imageIds = [];
    for (let index = 0; index < args.frames; index++) {
      const start = pixels.byteOffset + index * frameBytes;
      const imageId = `medattn:${args.scan}:${args.first + index}`;
      addImage(imageId, new TYPED[args.dtype](pixels.buffer.slice(start, start + frameBytes)), args);
      imageIds.push(imageId);
    }
    const state = saved();
    shown.pageFrame = args.frame;
    const index = state.pageFrame === args.frame && state.index !== undefined ? state.index : args.frame - args.first;
    await viewport.setStack(imageIds, index);
    const sameWindow = JSON.stringify(state.pageWindow) === JSON.stringify(args.window);
    shown.pageWindow = args.window;
    viewport.setProperties({
      voiRange: sameWindow && state.voiRange ? state.voiRange : voiOf(args.window),
      invert: args.inverted,
    });
    shown.zoomed = Boolean(state.zoomed);
    if (state.zoomed) viewport.setCamera(state.camera);
    shown.overlayOn = state.overlayOn ?? true;
    if (PRIMARY_TOOLS[state.tool] && (shown.marking || !state.tool.startsWith('mark-'))) chooseTool(state.tool);
  } else {
    if (JSON.stringify(args.window) !== JSON.stringify(shown.pageWindow)) {
      shown.pageWindow = args.window; // the page's window changed: it wins over a drag
      viewport.setProperties({ voiRange: voiOf(args.window) });
    }
    if (args.frame !== shown.pageFrame) {
      shown.pageFrame = args.frame; // the page's frame slider moved: the viewer goes there
      await viewport.setImageIdIndex(args.frame - args.first);
    }
  }
  await setOverlay(args);
  viewport.render();
  drawOverlay(); // a new layer over an unchanged image: Cornerstone may not draw the image again
}

// What the viewer tells the page: a mark just drawn, the overlay's opacity chosen, or that it lacks the scan it
// was handed without its values (the page sends them once, to a viewer it drew in its run before). Each message
// is new (its id), so that the page hears it even when its content repeats.
function say(message) {
  const value = { ...message, id: `${Date.now()}-${Math.random()}` };
  post('streamlit:setComponentValue', { value, dataType: 'json' });
}

async function setOverlay(args) {
  if (!args.overlay) {
    shown.overlay = null;
    return;
  }
  const [rows, columns] = args.overlay_shape;
  const layerOf = async (deflated) => {
    const rgba = await inflate(deflated);
    const layer = new OffscreenCanvas(columns, rows);
    layer.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer), columns, rows), 0, 0);
    return layer;
  };
  shown.overlay = { heat: await layerOf(args.overlay), lines: args.lines ? await layerOf(args.lines) : null };
  shown.overlayChecksum = String(args.overlay_checksum);
  overlayButton.setAttribute('aria-pressed', String(shown.overlayOn));
}

function setMarking(marking) {
  shown.marking = marking || null;
  markingTools.hidden = !shown.marking;
  if (!shown.marking) {
    shown.drawn = null;
    if (shown.tool.startsWith('mark-')) chooseTool('w');
    return;
  }
  markingFor.textContent = shown.marking.label; // text, never HTML
  const kept = shown.marking.marks.find((mark) => mark.finding === shown.drawn?.finding);
  if (kept && JSON.stringify(kept.points) === JSON.stringify(shown.drawn.points)) shown.drawn = null; // the page has it
}

function onRendered() {
  if (!viewport.getImageData()) return; // the empty viewer, before its first scan
  const { voiRange } = viewport.getProperties();
  const { imageData } = viewport.getImageData();
  // Screen pixels per image pixel, said beside the window: a 64-pixel MR fitted to the screen is blown up.
  const [left, right] = [
    [0, 0, 0],
    [1, 0, 0],
  ].map((index) => viewport.worldToCanvas(imageData.indexToWorld(index)));
  const zoom = Math.hypot(right[0] - left[0], right[1] - left[1]);
  const width = voiRange.upper - voiRange.lower;
  const frame = shown.first + viewport.getCurrentImageIdIndex();
  const frames = shown.frames > 1 ? `  Frame ${frame + 1}/${shown.first + shown.frames}` : '';
  windowText.textContent = `W ${round(width)}  L ${round(voiRange.lower + width / 2)}  Zoom ${Math.round(zoom * 100)}%${frames}`;
  drawOverlay();
  keep();
}

function drawOverlay() {
  const context = overlayCanvas.getContext('2d');
  const ratio = window.devicePixelRatio || 1;
  overlayCanvas.width = element.clientWidth * ratio;
  overlayCanvas.height = element.clientHeight * ratio;
  context.clearRect(0, 0, overlayCanvas.width, overlayCanvas.height);
  // Which layer is on screen, at which opacity (its checksum@opacity), for tests and benchmarks to wait on.
  // The map belongs to the frame the page's model read: on any other frame, none is drawn.
  const onItsFrame = shown.first + viewport.getCurrentImageIdIndex() === shown.pageFrame;
  const drawn = shown.overlay && shown.overlayOn && onItsFrame;
  overlayCanvas.dataset.drawn = drawn ? `${shown.overlayChecksum}@${shown.opacity}` : '';
  if (!viewport.getImageData()) return;
  // The image's outer corners on the canvas (top left, top right, bottom left; pixel centres are whole
  // indices, so the edges lie half a pixel out): the layer is stretched over them.
  const { imageData, dimensions } = viewport.getImageData();
  const [columns, rows] = dimensions;
  const [topLeft, topRight, bottomLeft] = [
    [-0.5, -0.5, 0],
    [columns - 0.5, -0.5, 0],
    [-0.5, rows - 0.5, 0],
  ].map((index) => viewport.worldToCanvas(imageData.indexToWorld(index)));
  // Scan pixels (x, y; pixel i spans i to i + 1) to canvas pixels.
  const across = [(topRight[0] - topLeft[0]) / columns, (topRight[1] - topLeft[1]) / columns];
  const down = [(bottomLeft[0] - topLeft[0]) / rows, (bottomLeft[1] - topLeft[1]) / rows];
  if (drawn) {
    const { width, height } = shown.overlay.heat;
    context.setTransform(
      (across[0] * columns * ratio) / width,
      (across[1] * columns * ratio) / width,
      (down[0] * rows * ratio) / height,
      (down[1] * rows * ratio) / height,
      topLeft[0] * ratio,
      topLeft[1] * ratio
    );
    // The heat at the reader's opacity, the outlines opaque over it: as medattn's Layers.at flattens them.
    context.globalAlpha = shown.opacity;
    context.drawImage(shown.overlay.heat, 0, 0);
    context.globalAlpha = 1;
    if (shown.overlay.lines) context.drawImage(shown.overlay.lines, 0, 0);
  }
  if (onItsFrame) {
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    drawMarks(context, ([x, y]) => [
      topLeft[0] + x * across[0] + y * down[0],
      topLeft[1] + x * across[1] + y * down[1],
    ], Math.hypot(...across));
  }
}

// The page's marks, and one just drawn that the page has not sent back yet, each labelled with its finding.
function drawMarks(context, toCanvas, scale) {
  overlayCanvas.dataset.marks = '';
  if (!shown.marking) return;
  const marks = shown.marking.marks.filter((mark) => mark.finding !== shown.drawn?.finding);
  if (shown.drawn) marks.push(shown.drawn);
  overlayCanvas.dataset.marks = marks.map((mark) => `${mark.finding}:${mark.kind}`).join(' ');
  marks.forEach((mark, index) => {
    const colour = MARK_COLOURS[index % MARK_COLOURS.length];
    const points = mark.points.map(toCanvas);
    context.strokeStyle = colour;
    context.lineWidth = 3;
    context.beginPath();
    if (mark.kind === 'point') context.arc(...points[0], shown.marking.radius * scale, 0, 2 * Math.PI);
    else if (mark.kind === 'box') {
      const [[x0, y0], [x1, y1]] = points;
      context.rect(x0, y0, x1 - x0, y1 - y0);
    } else {
      points.forEach(([x, y], at) => (at ? context.lineTo(x, y) : context.moveTo(x, y)));
      context.closePath();
    }
    context.stroke();
    const [x, y] = points[0];
    context.font = '14px system-ui, sans-serif';
    context.fillStyle = 'rgba(0, 0, 0, 0.6)';
    context.fillRect(x, y - 32, context.measureText(mark.label).width + 8, 20);
    context.fillStyle = colour;
    context.fillText(mark.label, x + 4, y - 17); // canvas text: a name is never read as HTML
  });
}

function onHover(event) {
  const image = viewport.getImageData();
  if (!image) return;
  const box = element.getBoundingClientRect();
  const world = viewport.canvasToWorld([event.clientX - box.left, event.clientY - box.top]);
  const [column, row] = utilities.transformWorldToIndex(image.imageData, world);
  const [columns, rows] = image.dimensions;
  if (column < 0 || row < 0 || column >= columns || row >= rows) {
    readout.textContent = '';
    return;
  }
  const values = image.scalarData ?? image.imageData.getPointData().getScalars().getData();
  const components = values.length / (columns * rows);
  const at = (row * columns + column) * components;
  const value = components === 1 ? round(values[at]) : Array.from(values.slice(at, at + components)).join(', ');
  readout.textContent = `x ${column}  y ${row}  ${value}${shown.unit ? ` ${shown.unit}` : ''}`;
}

function round(value) {
  return Math.abs(value) >= 100 || Number.isInteger(value) ? Math.round(value) : Number(value.toPrecision(4));
}

function reset() {
  shown.zoomed = false;
  viewport.resetCamera();
  viewport.setProperties({ voiRange: voiOf(shown.pageWindow), invert: shown.inverted });
  viewport.render();
}

function toggleOverlay() {
  shown.overlayOn = !shown.overlayOn;
  overlayButton.setAttribute('aria-pressed', String(shown.overlayOn));
  drawOverlay();
  keep();
}

// The canvas fitted to the viewer's space, where it changed.
function fitViewport() {
  const size = `${element.clientWidth}x${element.clientHeight}`;
  if (size === shown.size) return;
  shown.size = size;
  engine.resize(true, shown.zoomed);
}

// Space kept above the viewer when it fills a screen: the app's header, and a margin.
const ABOVE_A_SCREEN = 96;

function fitHeight(fill) {
  shown.fill = fill;
  // 'below': as tall as the browser window leaves below the viewer's place on the page, so the whole scan shows
  // without scrolling (Review). 'screen': a screen's height less the header, the same wherever the viewer sits
  // (a reader study: the scan must not be smaller in one arm's readings than in another's). Neither depends
  // on how far the page is scrolled: that once made one reading's scan a third the size of the next.
  let height = 480;
  try {
    const frame = window.frameElement;
    let scroller = frame.parentElement;
    while (scroller && !(scroller.scrollHeight > scroller.clientHeight && getComputedStyle(scroller).overflowY !== 'visible')) {
      scroller = scroller.parentElement;
    }
    const scrolled = scroller ? scroller.scrollTop - scroller.getBoundingClientRect().top : window.parent.scrollY;
    const top = fill === 'screen' ? ABOVE_A_SCREEN : frame.getBoundingClientRect().top + scrolled;
    height = Math.max(320, Math.min(window.parent.innerHeight - top - 12, 1400));
  } catch {
    // not framed by the app (a test page): keep the default
  }
  if (document.body.style.height !== `${height}px`) {
    document.body.style.height = `${height}px`;
    post('streamlit:setFrameHeight', { height });
  }
}

// The opacity is drawn as it moves, and told to the page when it is let go (one rerun, for the report).
opacityInput.addEventListener('input', () => {
  shown.opacity = Number(opacityInput.value);
  drawOverlay();
});
opacityInput.addEventListener('change', () => {
  shown.pageOpacity = shown.saying = shown.opacity;
  say({ opacity: shown.opacity });
});

toolbar.addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  if (button.dataset.tool) chooseTool(button.dataset.tool);
  if (button.id === 'reset-button') reset();
  if (button === overlayButton) toggleOverlay();
});

// The viewer's keys work in the viewer, and on the page wherever nothing has the focus (so never in a field, a
// button, a slider or a menu of the page's). A key of the page's own (N: next case) pressed in the viewer goes
// on to the page.
function onKey(event, fromPage) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.forwardedByViewer) return;
  const focused = event.target;
  if (fromPage ? focused !== focused.ownerDocument.body : focused.closest?.('input, textarea, select')) return;
  const key = event.key.toLowerCase();
  if (PRIMARY_TOOLS[key]) chooseTool(key);
  else if (key === ' ') reset(); // as in OHIF; R is Streamlit's own key for running the page again
  else if (key === 'o' && shown.overlay) toggleOverlay();
  else {
    if (!fromPage) {
      const forwarded = new KeyboardEvent('keydown', {
        key: event.key, code: event.code, shiftKey: event.shiftKey, bubbles: true, cancelable: true,
      });
      forwarded.forwardedByViewer = true;
      window.parent.document.dispatchEvent(forwarded);
    }
    return;
  }
  event.preventDefault();
}
window.addEventListener('keydown', (event) => onKey(event, false));
try {
  const onPageKey = (event) => onKey(event, true);
  window.parent.document.addEventListener('keydown', onPageKey);
  window.addEventListener('pagehide', () => window.parent.document.removeEventListener('keydown', onPageKey));
} catch {
  // not framed by the app
}

// One render at a time, in the order the page sent them: a slow one finishing after the next drew a scan or a map
// the page had already replaced.
let rendering = Promise.resolve();
window.addEventListener('message', (event) => {
  if (event.data?.type !== 'streamlit:render') return;
  const args = event.data.args;
  rendering = rendering.then(() => render(args)).catch((error) => {
    readout.textContent = `The viewer could not show this scan: ${error.message}`;
  });
});

ready = start();
post('streamlit:componentReady', { apiVersion: 1 });
