// Compile MeshgateRegistry.sol with the pinned npm solc into the artifact Python loads at run time.
// Usage: node compile.js [--out PATH]   (default ../ledger/artifacts/MeshgateRegistry.json)
// evmVersion is "shanghai": Ganache 7.9 rejects newer opcodes (MCOPY, ...) as "invalid opcode".
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const NAME = "MeshgateRegistry";
const sourcePath = path.join(__dirname, `${NAME}.sol`);
const outFlag = process.argv.indexOf("--out");
const outPath =
  outFlag >= 0
    ? path.resolve(process.argv[outFlag + 1])
    : path.join(__dirname, "..", "ledger", "artifacts", `${NAME}.json`);

const source = fs.readFileSync(sourcePath, "utf8");
const input = {
  language: "Solidity",
  sources: { [`${NAME}.sol`]: { content: source } },
  settings: {
    evmVersion: "shanghai",
    optimizer: { enabled: true, runs: 200 },
    viaIR: true, // the schema and key-set entry points carry more calldata than the legacy stack allows
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);

const contract = output.contracts[`${NAME}.sol`][NAME];
const artifact = {
  contractName: NAME,
  compiler: { name: "solc", version: solc.version(), evmVersion: "shanghai", optimizerRuns: 200, viaIR: true },
  sourceSha256: crypto.createHash("sha256").update(source, "utf8").digest("hex"),
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
};
fs.mkdirSync(path.dirname(outPath), { recursive: true });
fs.writeFileSync(outPath, JSON.stringify(artifact, null, 2) + "\n");
console.log(`wrote ${outPath}`);
