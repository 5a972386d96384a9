// The workflow graph drawn with Cytoscape.js: atoms coloured by state, fired edges in green,
// dead or undecided ones grey, DEPENDS_ON dashed, a rework loop's back edge curved back in
// amber, an exclusive choice's and a race's edges marked where they start. `update` recolours without a new layout.
window.GNDP = window.GNDP || {};

// Long workflows are mostly chains: a plain top-down layout makes them a thin needle. Rank
// each atom by its longest path from a start atom, then lay the ranks out in rows that
// wrap like a snake (left to right, then right to left), parallel atoms stacked in a rank.
function snakePositions(graph, perRow = 6) {
  const rank = {}, incoming = {};
  graph.nodes.forEach((n) => { rank[n.id] = 0; incoming[n.id] = []; });
  graph.edges.forEach((e) => { if (!e.loop) incoming[e.to].push(e.from); });  // back edges would cycle
  const visit = (id, seen = new Set()) => {
    if (seen.has(id)) return rank[id];
    seen.add(id);
    rank[id] = Math.max(0, ...incoming[id].map((src) => visit(src, seen) + 1));
    return rank[id];
  };
  graph.nodes.forEach((n) => visit(n.id));
  const byRank = {};
  graph.nodes.forEach((n) => (byRank[rank[n.id]] = byRank[rank[n.id]] || []).push(n.id));
  const ranks = Object.keys(byRank).map(Number).sort((a, b) => a - b);
  const positions = {}, dx = 170, dy = 62;
  let rowTop = 0;
  for (let start = 0; start < ranks.length; start += perRow) {
    const row = ranks.slice(start, start + perRow);
    const tallest = Math.max(...row.map((r) => byRank[r].length));
    row.forEach((r, i) => {
      const column = (start / perRow) % 2 === 0 ? i : perRow - 1 - i;
      const ids = byRank[r], offset = ((tallest - ids.length) * dy) / 2;
      ids.forEach((id, j) => (positions[id] = { x: column * dx, y: rowTop + offset + j * dy }));
    });
    rowTop += tallest * dy + 50;
  }
  return positions;
}

GNDP.graph = function (container, data) {
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue("--" + name).trim();
  // How an atom's way on is chosen, drawn at the start of its edges as BPMN draws gateways:
  // a diamond for an exclusive choice (only the first edge that holds fires), a circle for a
  // race (the first atom done wins).
  const gate = {};
  data.nodes.forEach((n) => {
    if (n.then === "first_done") gate[n.id] = "race";
    else if (n.choose === "first") gate[n.id] = "first";
  });
  // A step inside a rework loop that has run again says which run it is on.
  const label = (n) => (n.iteration > 1 ? `${n.name}\n(run ${n.iteration})` : n.name);
  const elements = (graph) => [
    ...graph.nodes.map((n) => ({ data: { id: n.id, label: label(n), state: n.state, kind: n.kind } })),
    ...graph.edges.map((e, i) => ({
      data: { id: "e" + i, source: e.from, target: e.to, type: e.type, loop: e.loop ? "yes" : "no",
              gate: e.type === "ENABLES" && !e.loop ? gate[e.from] || "" : "",
              fired: e.fired === true ? "yes" : e.fired === false ? "no" : "undecided" },
    })),
  ];
  const cy = cytoscape({
    container,
    elements: elements(data),
    wheelSensitivity: 0.2,
    layout: { name: "preset", positions: snakePositions(data), padding: 20 },
    style: [
      { selector: "node", style: {
          label: "data(label)", "text-wrap": "wrap", "text-max-width": 110, "font-size": 10, color: "#fff",
          "text-valign": "center", "text-halign": "center", width: 126, height: 44, shape: "round-rectangle",
          "background-color": colour("waiting"), "border-width": 0 } },
      { selector: "node[kind = 'system']", style: { shape: "cut-rectangle" } },
      { selector: "node[state = 'active']", style: { "background-color": colour("active"), "border-width": 3, "border-color": "#93c5fd" } },
      { selector: "node[state = 'completed']", style: { "background-color": colour("completed") } },
      { selector: "node[state = 'skipped']", style: { "background-color": colour("skipped"), opacity: 0.75 } },
      // An aborted process's steps that were current: final, crossed out by a dashed border.
      { selector: "node[state = 'cancelled']", style: {
          "background-color": colour("cancelled"), "border-width": 3, "border-style": "dashed", "border-color": "#fca5a5" } },
      { selector: "edge", style: {
          width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle",
          "line-color": "#cbd5e1", "target-arrow-color": "#cbd5e1" } },
      { selector: "edge[fired = 'yes']", style: { width: 3.5, "line-color": "#16a34a", "target-arrow-color": "#16a34a" } },
      { selector: "edge[fired = 'no']", style: { "line-style": "dotted", opacity: 0.6 } },
      { selector: "edge[gate = 'first']", style: { "source-arrow-shape": "diamond", "source-arrow-fill": "hollow",
          "source-arrow-color": "#475569", "arrow-scale": 1.3 } },
      { selector: "edge[gate = 'race']", style: { "source-arrow-shape": "circle", "source-arrow-fill": "hollow",
          "source-arrow-color": "#475569", "arrow-scale": 1.3 } },
      // A back edge: curved back over the steps it repeats, dashed amber.
      { selector: "edge[loop = 'yes']", style: {
          "curve-style": "unbundled-bezier", "control-point-distances": [-90], "control-point-weights": [0.5],
          "line-style": "dashed", "line-color": "#d97706", "target-arrow-color": "#d97706" } },
      { selector: "edge[loop = 'yes'][fired = 'yes']", style: { "line-style": "solid", width: 3.5 } },
      { selector: "edge[type = 'DEPENDS_ON']", style: { "line-style": "dashed", "line-color": "#a78bfa", "target-arrow-color": "#a78bfa" } },
    ],
  });
  cy.fit(undefined, 20);
  return {
    cy,
    update(graph) {
      graph.nodes.forEach((n) => cy.getElementById(n.id).data({ state: n.state, label: label(n) }));
      graph.edges.forEach((e, i) => cy.getElementById("e" + i).data("fired",
        e.fired === true ? "yes" : e.fired === false ? "no" : "undecided"));
    },
  };
};
