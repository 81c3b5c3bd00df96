// A grpc-java client of the onestop settlement server: settles a bill, then sends it again with
// a negative amount to PreSettle and prints the google.rpc.BadRequest of the refusal.
//
//   adapters/clients/java/build.sh build          # protoc + grpc-java plugin + javac (see there)
//   java -cp "$(cat build/classpath)" SettleClient 127.0.0.1:50051 policies/samples/longzhou-1.json

import cn.onestop.settlement.v1.Bill;
import cn.onestop.settlement.v1.LayerResult;
import cn.onestop.settlement.v1.PreSettleRequest;
import cn.onestop.settlement.v1.SettleRequest;
import cn.onestop.settlement.v1.SettleResponse;
import cn.onestop.settlement.v1.SettlementServiceGrpc;
import cn.onestop.settlement.v1.SettlementRecord;
import cn.onestop.settlement.v1.SettlementResult;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Any;
import com.google.protobuf.util.JsonFormat;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

public final class SettleClient {
  public static void main(String[] args) throws Exception {
    String address = args.length > 0 ? args[0] : "127.0.0.1:50051";
    Path billFile = Path.of(args.length > 1 ? args[1] : "policies/samples/longzhou-1.json");
    Bill bill;
    try {
      bill = readBill(billFile);
    } catch (Exception e) {  // one line naming the file, never a stack trace
      System.err.printf("%s: cannot read the bill: %s%n", billFile,
          e instanceof java.nio.file.NoSuchFileException ? "no such file" : e.getMessage());
      System.exit(1);
      return;
    }
    ManagedChannel channel = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
    try {
      SettlementServiceGrpc.SettlementServiceBlockingStub stub =
          SettlementServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
      SettleResponse res;
      try {
        // the request id of the Node example too: run both, and the second replays the first
        res = stub.settle(
            SettleRequest.newBuilder().setRequestId("example-" + bill.getId()).setBill(bill).build());
      } catch (StatusRuntimeException e) {
        System.out.print("settle failed: ");
        printStatus(e);
        System.exit(1);
        return;
      }
      SettlementRecord s = res.getSettlement();
      SettlementResult r = s.getResult();
      System.out.printf("settled %s: settlement %s (replay: %s), status %s, policy %s%n",
          r.getBillId(), s.getSettlementId(), res.getReplay(), s.getStatus(), r.getPolicy());
      for (LayerResult layer : r.getLayersList()) {
        if (layer.getApplied()) {
          System.out.printf("  %s (fund %s) pays %d fen%n", layer.getLayerId(), layer.getFundCode(), layer.getPay());
        }
      }
      System.out.printf("  funds total %d fen; patient pays at the window %d fen%n",
          r.getFundsTotal(), r.getWindowPay());

      Bill bad = bill.toBuilder().setItems(0, bill.getItems(0).toBuilder().setAmount(-1)).build();
      try {
        SettlementServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
            .preSettle(PreSettleRequest.newBuilder().setBill(bad).build());
        System.out.println("the bad bill was accepted?");
        System.exit(1);
      } catch (StatusRuntimeException e) {
        printStatus(e);
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** The sample bill files name the person inline ({"person": {"id": ...}}); Bill has person_id. */
  static Bill readBill(Path file) throws Exception {
    JsonObject obj = JsonParser.parseString(Files.readString(file)).getAsJsonObject();
    if (obj.has("person")) {
      if (!obj.has("person_id")) {
        obj.addProperty("person_id", obj.getAsJsonObject("person").get("id").getAsString());
      }
      obj.remove("person");
    }
    Bill.Builder b = Bill.newBuilder();
    JsonFormat.parser().merge(obj.toString(), b);
    return b.build();
  }

  /** google.rpc.Status from the grpc-status-details-bin trailer, its details unpacked. */
  static void printStatus(StatusRuntimeException e) throws Exception {
    System.out.printf("refused: %s (%d): %s%n", e.getStatus().getCode(),
        e.getStatus().getCode().value(), e.getStatus().getDescription());
    com.google.rpc.Status st = StatusProto.fromThrowable(e);
    if (st == null) {
      System.out.println("  (no grpc-status-details-bin trailer)");
      return;
    }
    for (Any d : st.getDetailsList()) {
      if (d.is(BadRequest.class)) {
        for (BadRequest.FieldViolation v : d.unpack(BadRequest.class).getFieldViolationsList()) {
          System.out.printf("  BadRequest field violation: %s: %s%n", v.getField(), v.getDescription());
        }
      } else if (d.is(ErrorInfo.class)) {
        ErrorInfo info = d.unpack(ErrorInfo.class);
        System.out.printf("  ErrorInfo: reason %s, domain %s, metadata %s%n",
            info.getReason(), info.getDomain(), info.getMetadataMap());
      } else {
        System.out.printf("  %s%n", d.getTypeUrl());
      }
    }
  }
}
