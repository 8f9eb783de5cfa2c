export const DASHBOARD_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>Fulcrum</title></head><body><p>dashboard coming</p></body></html>`;
