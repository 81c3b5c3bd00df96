// A grpc-js client of the onestop settlement server (protos/onestop/settlement/v1).
//
//   npm ci                      # @grpc/grpc-js, @grpc/proto-loader, protobufjs (package-lock.json)
//   node settle.js [--address HOST:PORT] [BILL.json]
//
// Settles a bill (default: policies/samples/longzhou-1.json) on the server at --address
// (default $ONESTOP_ADDRESS or 127.0.0.1:50051, plaintext: `make serve`), then sends the same
// bill with a negative amount to PreSettle and prints the google.rpc.BadRequest the server
// returns in the grpc-status-details-bin trailer. The request_id is derived from the bill id,
// so running it again replays the stored settlement (replay: true) instead of paying twice.
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const ROOT = path.resolve(__dirname, "..", "..", "..");
// protos/ holds the onestop protos, protos/third_party the vendored google/rpc ones
const INCLUDE = [path.join(ROOT, "protos"), path.join(ROOT, "protos", "third_party")];

function parseArgs(argv) {
  const out = {
    address: process.env.ONESTOP_ADDRESS || "127.0.0.1:50051",
    bill: path.join(ROOT, "policies", "samples", "longzhou-1.json"),
  };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--address") out.address = argv[++i];
    else out.bill = argv[i];
  }
  return out;
}

// The services: int64 fields arrive as strings (fen amounts can pass 2^53 in sums), field
// names as in the .proto (snake_case).
const definition = protoLoader.loadSync(
  ["onestop/settlement/v1/settlement.proto"],
  { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: INCLUDE },
);
const v1 = grpc.loadPackageDefinition(definition).onestop.settlement.v1;

// The error details: google.rpc.Status and the detail messages (BadRequest, ErrorInfo, ...),
// from the vendored protos; google/protobuf/any and duration are built into protobufjs.
const details = new protobuf.Root();
details.resolvePath = (origin, target) => {
  for (const dir of INCLUDE) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return target;
};
details.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: true });
const Status = details.lookupType("google.rpc.Status");

// The sample bill files name the person inline ({"person": {"id": ...}}); the rpc takes person_id.
function billMessage(bill) {
  const { person, ...rest } = bill;
  return { ...rest, person_id: bill.person_id || (person && person.id) };
}

function call(client, method, request) {
  return new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 30000 }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

// google.rpc.Status from the grpc-status-details-bin trailer, each detail (an Any) unpacked.
function richStatus(err) {
  const bin = err.metadata && err.metadata.get("grpc-status-details-bin");
  if (!bin || bin.length === 0) return null;
  const st = Status.decode(bin[0]);
  return {
    code: st.code,
    message: st.message,
    details: st.details.map((any) => {
      const name = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
      let type = null;
      try {
        type = details.lookupType(name);
      } catch (e) {
        return { type: name, unknown: true };
      }
      return { type: name, value: type.toObject(type.decode(any.value), { longs: String }) };
    }),
  };
}

function printStatus(err) {
  console.log(`refused: ${grpc.status[err.code]} (${err.code}): ${err.details}`);
  const st = richStatus(err);
  if (!st) {
    console.log("  (no grpc-status-details-bin trailer)");
    return;
  }
  for (const d of st.details) {
    if (d.type === "google.rpc.BadRequest") {
      for (const v of d.value.field_violations || []) {
        console.log(`  BadRequest field violation: ${v.field}: ${v.description}`);
      }
    } else if (d.type === "google.rpc.ErrorInfo") {
      console.log(`  ErrorInfo: reason ${d.value.reason}, domain ${d.value.domain}, metadata ${JSON.stringify(d.value.metadata || {})}`);
    } else {
      console.log(`  ${d.type}: ${JSON.stringify(d.value || {})}`);
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let bill;
  try {
    bill = billMessage(JSON.parse(fs.readFileSync(args.bill, "utf8")));
  } catch (err) {
    // one line naming the file, never a stack trace (exit 1: the input was refused)
    console.error(`${args.bill}: cannot read the bill: ${err.code === "ENOENT" ? "no such file" : err.message}`);
    process.exitCode = 1;
    return;
  }
  const client = new v1.SettlementService(args.address, grpc.credentials.createInsecure());
  try {
    const res = await call(client, "Settle", { request_id: `example-${bill.id}`, bill });
    const s = res.settlement;
    const r = s.result;
    console.log(`settled ${r.bill_id}: settlement ${s.settlement_id} (replay: ${res.replay}), ` +
      `status ${s.status}, policy ${r.policy}`);
    for (const layer of r.layers) {
      if (layer.applied) console.log(`  ${layer.layer_id} (fund ${layer.fund_code}) pays ${layer.pay} fen`);
    }
    console.log(`  funds total ${r.funds_total} fen; patient pays at the window ${r.window_pay} fen`);

    const bad = JSON.parse(JSON.stringify(bill));
    bad.items[0].amount = -1; // negative amounts are refused, never clipped
    try {
      await call(client, "PreSettle", { bill: bad });
      console.log("the bad bill was accepted?");
      process.exitCode = 1;
    } catch (err) {
      printStatus(err);
    }
  } catch (err) {
    console.error(`settle failed: ${err.code !== undefined ? grpc.status[err.code] : ""} ${err.message}`);
    if (err.metadata) printStatus(err);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
