#!/usr/bin/env node
// Starts @vercel/cosmosdb-server (a Cosmos DB NoSQL API stand-in) for the tests.
//
//   node cosmos_launcher.js [--port N]    (default 0: any free port)
//
// Listens on 127.0.0.1 only, over HTTPS with the package's self-signed
// certificate, with keep-alive connections (the package's command line answers
// `connection: close`, which limits it to about twenty requests a second).
// Prints one line `cosmosdb-server listening on https://127.0.0.1:PORT` when
// ready; stops on SIGTERM or SIGINT.
//
// Where the package does not answer like Cosmos DB, the launcher makes it:
// - reading a missing document throws inside the package (a 500 the SDK
//   retries); here it is the 404 NotFound that Cosmos DB answers;
// - transactional batches: the SDK sends the partition key in a request
//   header, which the package reads only for `create`; here every operation
//   gets it, so upsert, replace, read and delete work too. And a batch sent
//   as atomic (the SDK always does) is all or nothing, as Cosmos DB documents:
//   every operation's precondition (exists, absent, ETag) is checked before
//   any is applied; on the first failure nothing is written, that operation
//   answers its status and the others 424, with 207 for the whole request.
// The patches replace the package's handler modules' exports before its
// router is loaded and captures them.
"use strict";

const readDocument = require("@vercel/cosmosdb-server/lib/handler/read-document");
const batchDocuments = require("@vercel/cosmosdb-server/lib/handler/batch-documents");
const documentOperations = require("@vercel/cosmosdb-server/lib/handler/_document-operations");
const json = require("@vercel/cosmosdb-server/lib/json");
const partitionHeader = require("@vercel/cosmosdb-server/lib/utils/get-partition-from-header");

const isTrue = value => String(value || "").toLowerCase() === "true";

function headerPartitionKey(req) {
  const header = partitionHeader.default(req);
  return header && header !== "[{}]" ? header : undefined;
}

function currentDocument(collection, id, header) {
  let key;
  try {
    key = partitionHeader.parsePartitionKey(header, id);
  } catch (err) {
    return { badRequest: true };
  }
  return { key, data: collection.document(id, key).read() };
}

// -- missing documents answer 404 -----------------------------------------------------

const originalReadDocument = readDocument.default;
readDocument.default = (account, req, res, params) => {
  const collection = account.database(params.dbId).collection(params.collId);
  const header = headerPartitionKey(req);
  if (collection.read() && header !== undefined) {
    const current = currentDocument(collection, params.docId, header);
    if (!current.badRequest && !current.data) {
      res.statusCode = 404;
      return {
        code: "NotFound",
        message: "Entity with the specified id does not exist in the system."
      };
    }
  }
  return originalReadDocument(account, req, res, params);
};

// -- transactional batches ------------------------------------------------------------------

// The first operation that would fail, as { index, statusCode }, or null when all would succeed.
function firstFailure(collection, operations) {
  const state = new Map();
  for (let index = 0; index < operations.length; index += 1) {
    const op = operations[index];
    const type = op && op.operationType;
    const id = op && (op.id || (op.resourceBody && op.resourceBody.id));
    if (!id) return { index, statusCode: 400 };
    const current = currentDocument(collection, id, op.partitionKey);
    if (current.badRequest) return { index, statusCode: 400 };
    const stateKey = JSON.stringify([current.key, id]);
    const doc = state.has(stateKey)
      ? state.get(stateKey)
      : current.data
        ? { exists: true, etag: current.data._etag }
        : { exists: false };
    const etagMismatch = Boolean(op.ifMatch) && doc.exists && op.ifMatch !== doc.etag;
    switch (type) {
      case "Create":
        if (doc.exists) return { index, statusCode: 409 };
        break;
      case "Upsert":
        if (etagMismatch) return { index, statusCode: 412 };
        break;
      case "Replace":
      case "Delete":
      case "Read":
        if (!doc.exists) return { index, statusCode: 404 };
        if (etagMismatch) return { index, statusCode: 412 };
        break;
      default:
        return { index, statusCode: 400 };
    }
    if (type === "Delete") state.set(stateKey, { exists: false });
    else if (type !== "Read") state.set(stateKey, { exists: true, etag: undefined });
  }
  return null;
}

const apply = {
  Create: documentOperations.createOperation,
  Upsert: documentOperations.upsertOperation,
  Read: documentOperations.readOperation,
  Delete: documentOperations.deleteOperation,
  Replace: documentOperations.replaceOperation
};

batchDocuments.default = async (account, req, res, { dbId, collId }) => {
  const body = await json.default(req);
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) {
    res.statusCode = 404;
    return {};
  }
  if (!Array.isArray(body)) {
    res.statusCode = 400;
    return { message: "Invalid request body" };
  }
  const header = headerPartitionKey(req);
  for (const op of body) {
    if (op && typeof op === "object" && op.partitionKey === undefined && header !== undefined) {
      op.partitionKey = header;
    }
  }
  for (const op of body) {
    if (!op || !apply[op.operationType]) {
      res.statusCode = 400;
      return { message: `Operation type '${op && op.operationType}' is not supported in Batch.` };
    }
  }
  if (isTrue(req.headers["x-ms-cosmos-batch-atomic"])) {
    const failure = firstFailure(collection, body);
    if (failure) {
      res.statusCode = 207;
      return body.map((_, i) => ({
        statusCode: i === failure.index ? failure.statusCode : 424,
        requestCharge: 0
      }));
    }
  }
  const continueOnError = isTrue(req.headers["x-ms-cosmos-batch-continue-on-error"]);
  const results = [];
  let failed = false;
  for (const op of body) {
    if (failed && !continueOnError) {
      results.push({ statusCode: 424, requestCharge: 0 });
      continue;
    }
    const result = apply[op.operationType](collection, op);
    failed = result.statusCode >= 400;
    results.push(
      failed
        ? { statusCode: result.statusCode, requestCharge: 0 }
        : {
            statusCode: result.statusCode,
            requestCharge: 1,
            eTag: result.body ? result.body._etag : undefined,
            resourceBody: result.body
          }
    );
  }
  if (failed) res.statusCode = 207;
  return results;
};

// -- the server ------------------------------------------------------------------------------

// Required only now, so the router picks up the patched handlers.
const { createHttpsServer } = require("@vercel/cosmosdb-server");

let port = 0;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 1) {
  if (argv[i] === "--port" || argv[i] === "-p") {
    port = parseInt(argv[i + 1], 10);
    i += 1;
  }
}

const server = createHttpsServer({ keepAlive: true });
server.keepAliveTimeout = 30000;
server.listen(port, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`cosmosdb-server listening on https://127.0.0.1:${address.port}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
