from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutFundsRequest(_message.Message):
    __slots__ = ("yaml", "source_name", "dry_run")
    YAML_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    source_name: str
    dry_run: bool
    def __init__(self, yaml: _Optional[str] = ..., source_name: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class PutFundsResponse(_message.Message):
    __slots__ = ("region", "fund_codes", "stored", "unchanged", "version")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODES_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    region: str
    fund_codes: _containers.RepeatedScalarFieldContainer[str]
    stored: bool
    unchanged: bool
    version: int
    def __init__(self, region: _Optional[str] = ..., fund_codes: _Optional[_Iterable[str]] = ..., stored: _Optional[bool] = ..., unchanged: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class RecordMoneyInRequest(_message.Message):
    __slots__ = ("request_id", "region", "fund_code", "year", "kind", "payer", "amount", "on", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    region: str
    fund_code: str
    year: int
    kind: str
    payer: str
    amount: int
    on: str
    note: str
    def __init__(self, request_id: _Optional[str] = ..., region: _Optional[str] = ..., fund_code: _Optional[str] = ..., year: _Optional[int] = ..., kind: _Optional[str] = ..., payer: _Optional[str] = ..., amount: _Optional[int] = ..., on: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class MoneyIn(_message.Message):
    __slots__ = ("record_id", "region", "fund_code", "year", "kind", "payer", "amount", "on", "note", "recorded_by", "recorded_at")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    region: str
    fund_code: str
    year: int
    kind: str
    payer: str
    amount: int
    on: str
    note: str
    recorded_by: str
    recorded_at: str
    def __init__(self, record_id: _Optional[str] = ..., region: _Optional[str] = ..., fund_code: _Optional[str] = ..., year: _Optional[int] = ..., kind: _Optional[str] = ..., payer: _Optional[str] = ..., amount: _Optional[int] = ..., on: _Optional[str] = ..., note: _Optional[str] = ..., recorded_by: _Optional[str] = ..., recorded_at: _Optional[str] = ...) -> None: ...

class RecordMoneyInResponse(_message.Message):
    __slots__ = ("record", "replay")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    record: MoneyIn
    replay: bool
    def __init__(self, record: _Optional[_Union[MoneyIn, _Mapping]] = ..., replay: _Optional[bool] = ...) -> None: ...

class Claim(_message.Message):
    __slots__ = ("claim_id", "kind", "settlement_id", "layer_id", "fund_code", "region", "year", "person_id", "household", "hospital", "bill_id", "discharge_date", "filed_amount", "status", "filed_at", "filed_by", "approved_amount", "current_amount", "decided_at", "decided_by", "note", "reason", "paid_at", "paid_date", "payment_ref", "paid_by", "days_to_payment")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    BILL_ID_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_DATE_FIELD_NUMBER: _ClassVar[int]
    FILED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILED_AT_FIELD_NUMBER: _ClassVar[int]
    FILED_BY_FIELD_NUMBER: _ClassVar[int]
    APPROVED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    PAID_DATE_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REF_FIELD_NUMBER: _ClassVar[int]
    PAID_BY_FIELD_NUMBER: _ClassVar[int]
    DAYS_TO_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    kind: str
    settlement_id: str
    layer_id: str
    fund_code: str
    region: str
    year: int
    person_id: str
    household: str
    hospital: str
    bill_id: str
    discharge_date: str
    filed_amount: int
    status: str
    filed_at: str
    filed_by: str
    approved_amount: int
    current_amount: int
    decided_at: str
    decided_by: str
    note: str
    reason: str
    paid_at: str
    paid_date: str
    payment_ref: str
    paid_by: str
    days_to_payment: int
    def __init__(self, claim_id: _Optional[str] = ..., kind: _Optional[str] = ..., settlement_id: _Optional[str] = ..., layer_id: _Optional[str] = ..., fund_code: _Optional[str] = ..., region: _Optional[str] = ..., year: _Optional[int] = ..., person_id: _Optional[str] = ..., household: _Optional[str] = ..., hospital: _Optional[str] = ..., bill_id: _Optional[str] = ..., discharge_date: _Optional[str] = ..., filed_amount: _Optional[int] = ..., status: _Optional[str] = ..., filed_at: _Optional[str] = ..., filed_by: _Optional[str] = ..., approved_amount: _Optional[int] = ..., current_amount: _Optional[int] = ..., decided_at: _Optional[str] = ..., decided_by: _Optional[str] = ..., note: _Optional[str] = ..., reason: _Optional[str] = ..., paid_at: _Optional[str] = ..., paid_date: _Optional[str] = ..., payment_ref: _Optional[str] = ..., paid_by: _Optional[str] = ..., days_to_payment: _Optional[int] = ...) -> None: ...

class FileClaimRequest(_message.Message):
    __slots__ = ("settlement_id", "layer_id")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    layer_id: str
    def __init__(self, settlement_id: _Optional[str] = ..., layer_id: _Optional[str] = ...) -> None: ...

class FileClaimResponse(_message.Message):
    __slots__ = ("claim",)
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    claim: Claim
    def __init__(self, claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class GetClaimRequest(_message.Message):
    __slots__ = ("claim_id",)
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    def __init__(self, claim_id: _Optional[str] = ...) -> None: ...

class GetClaimResponse(_message.Message):
    __slots__ = ("claim",)
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    claim: Claim
    def __init__(self, claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class ListClaimsRequest(_message.Message):
    __slots__ = ("region", "fund_code", "person_id", "status", "kind", "year", "page_size", "page_token")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    region: str
    fund_code: str
    person_id: str
    status: str
    kind: str
    year: int
    page_size: int
    page_token: str
    def __init__(self, region: _Optional[str] = ..., fund_code: _Optional[str] = ..., person_id: _Optional[str] = ..., status: _Optional[str] = ..., kind: _Optional[str] = ..., year: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListClaimsResponse(_message.Message):
    __slots__ = ("claims", "next_page_token")
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    claims: _containers.RepeatedCompositeFieldContainer[Claim]
    next_page_token: str
    def __init__(self, claims: _Optional[_Iterable[_Union[Claim, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ApproveClaimRequest(_message.Message):
    __slots__ = ("claim_id", "amount", "note")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    amount: int
    note: str
    def __init__(self, claim_id: _Optional[str] = ..., amount: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class ApproveClaimResponse(_message.Message):
    __slots__ = ("claim",)
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    claim: Claim
    def __init__(self, claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class RejectClaimRequest(_message.Message):
    __slots__ = ("claim_id", "reason")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    reason: str
    def __init__(self, claim_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectClaimResponse(_message.Message):
    __slots__ = ("claim",)
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    claim: Claim
    def __init__(self, claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class PayClaimRequest(_message.Message):
    __slots__ = ("claim_id", "paid_date", "payment_ref")
    CLAIM_ID_FIELD_NUMBER: _ClassVar[int]
    PAID_DATE_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REF_FIELD_NUMBER: _ClassVar[int]
    claim_id: str
    paid_date: str
    payment_ref: str
    def __init__(self, claim_id: _Optional[str] = ..., paid_date: _Optional[str] = ..., payment_ref: _Optional[str] = ...) -> None: ...

class PayClaimResponse(_message.Message):
    __slots__ = ("claim",)
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    claim: Claim
    def __init__(self, claim: _Optional[_Union[Claim, _Mapping]] = ...) -> None: ...

class FundStatementRequest(_message.Message):
    __slots__ = ("region", "fund_code", "year", "as_of")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    region: str
    fund_code: str
    year: int
    as_of: str
    def __init__(self, region: _Optional[str] = ..., fund_code: _Optional[str] = ..., year: _Optional[int] = ..., as_of: _Optional[str] = ...) -> None: ...

class ClaimTotals(_message.Message):
    __slots__ = ("kind", "status", "count", "filed_amount", "current_amount")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FILED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    status: str
    count: int
    filed_amount: int
    current_amount: int
    def __init__(self, kind: _Optional[str] = ..., status: _Optional[str] = ..., count: _Optional[int] = ..., filed_amount: _Optional[int] = ..., current_amount: _Optional[int] = ...) -> None: ...

class DaysToPayment(_message.Message):
    __slots__ = ("count", "median", "mean", "p90", "min", "max")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    count: int
    median: int
    mean: int
    p90: int
    min: int
    max: int
    def __init__(self, count: _Optional[int] = ..., median: _Optional[int] = ..., mean: _Optional[int] = ..., p90: _Optional[int] = ..., min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class FundStatementResponse(_message.Message):
    __slots__ = ("region", "region_name", "fund_code", "fund_name", "fund_name_zh", "year", "as_of", "enrolled", "budget", "carried_in", "budget_mode", "money_in", "money_in_records", "window_paid", "window_count", "claims_paid", "claims_payable", "claims_pending", "used", "budget_left", "loss_ratio_bp", "claims", "checkpoint_height", "checkpoint_digest", "balance", "money_out", "window_reversed", "days_to_payment")
    REGION_FIELD_NUMBER: _ClassVar[int]
    REGION_NAME_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    FUND_NAME_FIELD_NUMBER: _ClassVar[int]
    FUND_NAME_ZH_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    CARRIED_IN_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    MONEY_IN_FIELD_NUMBER: _ClassVar[int]
    MONEY_IN_RECORDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PAID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_COUNT_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_PAID_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_PAYABLE_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_PENDING_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_FIELD_NUMBER: _ClassVar[int]
    LOSS_RATIO_BP_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    MONEY_OUT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_REVERSED_FIELD_NUMBER: _ClassVar[int]
    DAYS_TO_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    region: str
    region_name: str
    fund_code: str
    fund_name: str
    fund_name_zh: str
    year: int
    as_of: str
    enrolled: int
    budget: int
    carried_in: int
    budget_mode: str
    money_in: int
    money_in_records: _containers.RepeatedCompositeFieldContainer[MoneyIn]
    window_paid: int
    window_count: int
    claims_paid: int
    claims_payable: int
    claims_pending: int
    used: int
    budget_left: int
    loss_ratio_bp: int
    claims: _containers.RepeatedCompositeFieldContainer[ClaimTotals]
    checkpoint_height: int
    checkpoint_digest: str
    balance: int
    money_out: int
    window_reversed: int
    days_to_payment: DaysToPayment
    def __init__(self, region: _Optional[str] = ..., region_name: _Optional[str] = ..., fund_code: _Optional[str] = ..., fund_name: _Optional[str] = ..., fund_name_zh: _Optional[str] = ..., year: _Optional[int] = ..., as_of: _Optional[str] = ..., enrolled: _Optional[int] = ..., budget: _Optional[int] = ..., carried_in: _Optional[int] = ..., budget_mode: _Optional[str] = ..., money_in: _Optional[int] = ..., money_in_records: _Optional[_Iterable[_Union[MoneyIn, _Mapping]]] = ..., window_paid: _Optional[int] = ..., window_count: _Optional[int] = ..., claims_paid: _Optional[int] = ..., claims_payable: _Optional[int] = ..., claims_pending: _Optional[int] = ..., used: _Optional[int] = ..., budget_left: _Optional[int] = ..., loss_ratio_bp: _Optional[int] = ..., claims: _Optional[_Iterable[_Union[ClaimTotals, _Mapping]]] = ..., checkpoint_height: _Optional[int] = ..., checkpoint_digest: _Optional[str] = ..., balance: _Optional[int] = ..., money_out: _Optional[int] = ..., window_reversed: _Optional[int] = ..., days_to_payment: _Optional[_Union[DaysToPayment, _Mapping]] = ...) -> None: ...

class PersonCoverRequest(_message.Message):
    __slots__ = ("person_id", "year")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    year: int
    def __init__(self, person_id: _Optional[str] = ..., year: _Optional[int] = ...) -> None: ...

class FundCover(_message.Message):
    __slots__ = ("region", "fund_code", "fund_name", "fund_name_zh", "operator", "covered", "budget_mode", "layers")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    FUND_NAME_FIELD_NUMBER: _ClassVar[int]
    FUND_NAME_ZH_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    region: str
    fund_code: str
    fund_name: str
    fund_name_zh: str
    operator: str
    covered: bool
    budget_mode: str
    layers: _containers.RepeatedCompositeFieldContainer[LayerCover]
    def __init__(self, region: _Optional[str] = ..., fund_code: _Optional[str] = ..., fund_name: _Optional[str] = ..., fund_name_zh: _Optional[str] = ..., operator: _Optional[str] = ..., covered: _Optional[bool] = ..., budget_mode: _Optional[str] = ..., layers: _Optional[_Iterable[_Union[LayerCover, _Mapping]]] = ...) -> None: ...

class LayerCover(_message.Message):
    __slots__ = ("layer_id", "name", "name_zh", "settle_at", "covered")
    LAYER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_ZH_FIELD_NUMBER: _ClassVar[int]
    SETTLE_AT_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    layer_id: str
    name: str
    name_zh: str
    settle_at: str
    covered: bool
    def __init__(self, layer_id: _Optional[str] = ..., name: _Optional[str] = ..., name_zh: _Optional[str] = ..., settle_at: _Optional[str] = ..., covered: _Optional[bool] = ...) -> None: ...

class SettlementBrief(_message.Message):
    __slots__ = ("settlement_id", "hospital", "bill_id", "discharge_date", "status", "total", "funds_total", "window_pay")
    SETTLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_FIELD_NUMBER: _ClassVar[int]
    BILL_ID_FIELD_NUMBER: _ClassVar[int]
    DISCHARGE_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FUNDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_PAY_FIELD_NUMBER: _ClassVar[int]
    settlement_id: str
    hospital: str
    bill_id: str
    discharge_date: str
    status: str
    total: int
    funds_total: int
    window_pay: int
    def __init__(self, settlement_id: _Optional[str] = ..., hospital: _Optional[str] = ..., bill_id: _Optional[str] = ..., discharge_date: _Optional[str] = ..., status: _Optional[str] = ..., total: _Optional[int] = ..., funds_total: _Optional[int] = ..., window_pay: _Optional[int] = ...) -> None: ...

class PersonCoverResponse(_message.Message):
    __slots__ = ("person_id", "household", "region", "township", "village", "year", "funds", "settlements", "claims", "cover_date")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_FIELD_NUMBER: _ClassVar[int]
    VILLAGE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    FUNDS_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENTS_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    COVER_DATE_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    household: str
    region: str
    township: str
    village: str
    year: int
    funds: _containers.RepeatedCompositeFieldContainer[FundCover]
    settlements: _containers.RepeatedCompositeFieldContainer[SettlementBrief]
    claims: _containers.RepeatedCompositeFieldContainer[Claim]
    cover_date: str
    def __init__(self, person_id: _Optional[str] = ..., household: _Optional[str] = ..., region: _Optional[str] = ..., township: _Optional[str] = ..., village: _Optional[str] = ..., year: _Optional[int] = ..., funds: _Optional[_Iterable[_Union[FundCover, _Mapping]]] = ..., settlements: _Optional[_Iterable[_Union[SettlementBrief, _Mapping]]] = ..., claims: _Optional[_Iterable[_Union[Claim, _Mapping]]] = ..., cover_date: _Optional[str] = ...) -> None: ...

class CoverListRequest(_message.Message):
    __slots__ = ("region", "township", "village", "as_of", "page_size", "page_token")
    REGION_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_FIELD_NUMBER: _ClassVar[int]
    VILLAGE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    region: str
    township: str
    village: str
    as_of: str
    page_size: int
    page_token: str
    def __init__(self, region: _Optional[str] = ..., township: _Optional[str] = ..., village: _Optional[str] = ..., as_of: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class CoverEntry(_message.Message):
    __slots__ = ("person_id", "household", "township", "village", "fund_codes")
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_FIELD_NUMBER: _ClassVar[int]
    VILLAGE_FIELD_NUMBER: _ClassVar[int]
    FUND_CODES_FIELD_NUMBER: _ClassVar[int]
    person_id: str
    household: str
    township: str
    village: str
    fund_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, person_id: _Optional[str] = ..., household: _Optional[str] = ..., township: _Optional[str] = ..., village: _Optional[str] = ..., fund_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class CoverListResponse(_message.Message):
    __slots__ = ("region", "as_of", "persons", "next_page_token")
    REGION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    region: str
    as_of: str
    persons: _containers.RepeatedCompositeFieldContainer[CoverEntry]
    next_page_token: str
    def __init__(self, region: _Optional[str] = ..., as_of: _Optional[str] = ..., persons: _Optional[_Iterable[_Union[CoverEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PublicFiguresRequest(_message.Message):
    __slots__ = ("region", "fund_code", "year")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    region: str
    fund_code: str
    year: int
    def __init__(self, region: _Optional[str] = ..., fund_code: _Optional[str] = ..., year: _Optional[int] = ...) -> None: ...

class PublicFiguresResponse(_message.Message):
    __slots__ = ("region", "region_name", "fund_code", "fund_name", "year", "enrolled", "money_in", "money_out", "claims_filed", "claims_paid", "claims_rejected", "loss_ratio_bp", "balance", "days_to_payment", "payable", "budget_left", "fund_name_zh", "as_of")
    REGION_FIELD_NUMBER: _ClassVar[int]
    REGION_NAME_FIELD_NUMBER: _ClassVar[int]
    FUND_CODE_FIELD_NUMBER: _ClassVar[int]
    FUND_NAME_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    MONEY_IN_FIELD_NUMBER: _ClassVar[int]
    MONEY_OUT_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FILED_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_PAID_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    LOSS_RATIO_BP_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    DAYS_TO_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    PAYABLE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_FIELD_NUMBER: _ClassVar[int]
    FUND_NAME_ZH_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    region: str
    region_name: str
    fund_code: str
    fund_name: str
    year: int
    enrolled: int
    money_in: int
    money_out: int
    claims_filed: int
    claims_paid: int
    claims_rejected: int
    loss_ratio_bp: int
    balance: int
    days_to_payment: DaysToPayment
    payable: int
    budget_left: int
    fund_name_zh: str
    as_of: str
    def __init__(self, region: _Optional[str] = ..., region_name: _Optional[str] = ..., fund_code: _Optional[str] = ..., fund_name: _Optional[str] = ..., year: _Optional[int] = ..., enrolled: _Optional[int] = ..., money_in: _Optional[int] = ..., money_out: _Optional[int] = ..., claims_filed: _Optional[int] = ..., claims_paid: _Optional[int] = ..., claims_rejected: _Optional[int] = ..., loss_ratio_bp: _Optional[int] = ..., balance: _Optional[int] = ..., days_to_payment: _Optional[_Union[DaysToPayment, _Mapping]] = ..., payable: _Optional[int] = ..., budget_left: _Optional[int] = ..., fund_name_zh: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...
