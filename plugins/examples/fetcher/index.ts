// Fetcher: the event's payload is an http:fetch request ({"method","url"}); the plugin performs it through the host and
// answers with the host's JSON answer ({"status","contentType","body"} or {"error"}). Hosts are fixed by the manifest.

@external("clippybot", "http_fetch")
declare function http_fetch(request: usize, requestLen: i32, out: usize, outCap: i32): i32;

const ANSWER_CAPACITY: i32 = 64 * 1024;

export function alloc(length: i32): usize {
  return heap.alloc(<usize>length);
}

export function abort(message: usize, file: usize, line: u32, column: u32): void {
  unreachable();
}

export function on_message(input: usize, length: i32): i64 {
  const out = heap.alloc(<usize>ANSWER_CAPACITY);
  let written = http_fetch(input, length, out, ANSWER_CAPACITY);
  if (written > ANSWER_CAPACITY) {
    written = ANSWER_CAPACITY; // the host copied what fits; a truncated answer is not valid JSON and the host reports it
  }
  return (<i64>out << 32) | <i64>written;
}
