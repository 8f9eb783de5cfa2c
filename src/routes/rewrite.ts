import type { RouteConfig } from '../config/types';
import { stripPathPrefix } from '../proxy/router';

/**
 * What the backend's request target becomes (SPEC 8.1): stripPrefix removes
 * the matched pathPrefix; rewrite replaces the path, by a fixed one or by a
 * regex and its replacement ($1...). Both keep the query string. null when
 * the route sends the path as it came.
 */
export function pathRewriter(route: RouteConfig): ((path: string) => string) | null {
  const { rewrite } = route;
  if (rewrite !== undefined) {
    if ('path' in rewrite) {
      const fixed = rewrite.path;
      return (path) => withQuery(fixed, path);
    }
    const regex = new RegExp(rewrite.pathRegex);
    const replacement = rewrite.replacement;
    return (path) => {
      const q = path.indexOf('?');
      const pathOnly = q === -1 ? path : path.slice(0, q);
      const next = pathOnly.replace(regex, replacement);
      // A replacement that lost the leading "/" still names a path.
      return withQuery(next.charCodeAt(0) === 47 /* / */ ? next : `/${next}`, path);
    };
  }
  const prefix = route.match.pathPrefix;
  if (route.stripPrefix && prefix !== undefined) return (path) => stripPathPrefix(path, prefix);
  return null;
}

/** `path` with the query string of `original`, if it had one. */
function withQuery(path: string, original: string): string {
  const q = original.indexOf('?');
  return q === -1 ? path : path + original.slice(q);
}
