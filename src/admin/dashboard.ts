/**
 * The dashboard page: one self-contained HTML document (inline CSS and JS, no
 * CDN: the machines running Fulcrum often have no internet). It reads the
 * admin API it is served from and refreshes itself.
 */
export { DASHBOARD_HTML } from './dashboard-page';
import { DASHBOARD_HTML } from './dashboard-page';

export function dashboardHtml(): string {
  return DASHBOARD_HTML;
}
