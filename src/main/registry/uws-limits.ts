// Evaluated before uWebSockets.js loads (see uws.ts): its HTTP parser reads this once, when the module loads.

/**
 * The most request-head bytes uWS buffers before it answers 431 itself, with an HTML body. Above shoal's
 * own limits (a 4 KiB target, 16 KiB of headers, checked in answer.ts with an OCI error body), so those
 * limits are what a client meets; uWS's default (4 KiB) would refuse long Go clients' heads first.
 */
export const UWS_HEAD_BYTES = 4096 + (16 << 10) + 4096;

process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(UWS_HEAD_BYTES);
