// Counter: counts the messages it has seen in this workspace, in its storage:kv, and answers {"count":N}.
// ABI: docs/plugins/abi.md — the host writes the event JSON at alloc(len) and reads the answer from the returned (ptr << 32 | len).

@external("clippybot", "kv_get")
declare function kv_get(key: usize, keyLen: i32, out: usize, outCap: i32): i32;

@external("clippybot", "kv_set")
declare function kv_set(key: usize, keyLen: i32, value: usize, valueLen: i32): i32;

export function alloc(length: i32): usize {
  return heap.alloc(<usize>length);
}

// No assertion can print anywhere: a failed one simply traps.
export function abort(message: usize, file: usize, line: u32, column: u32): void {
  unreachable();
}

export function on_message(input: usize, length: i32): i64 {
  const key = String.UTF8.encode("count");
  const buffer = new ArrayBuffer(8);
  let count: i64 = 0;
  if (kv_get(changetype<usize>(key), key.byteLength, changetype<usize>(buffer), 8) == 8) {
    count = load<i64>(changetype<usize>(buffer));
  }
  count += 1;
  store<i64>(changetype<usize>(buffer), count);
  if (kv_set(changetype<usize>(key), key.byteLength, changetype<usize>(buffer), 8) != 0) {
    unreachable(); // over quota
  }
  const answer = String.UTF8.encode('{"count":' + count.toString() + "}");
  return (<i64>changetype<usize>(answer) << 32) | <i64>answer.byteLength;
}
