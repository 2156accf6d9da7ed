// The one module that loads uWebSockets.js: its parser's limits are set first (ES modules evaluate their
// imports in order), and every listener gets the module from here.
import './uws-limits.js';
import uWS from 'uWebSockets.js';

export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
} from 'uWebSockets.js';
export default uWS;
