/* Strings of the review page, zh-CN (default) and English. Plain script: defines window.SW_I18N. */
(function () {
  "use strict";
  // Violation kinds (titles, category codes, colours) come from the server's kind catalogue (GET /api/v1/kinds,
  // set by setKinds), so a kind added there shows here with its own title; zone kinds' colours come from there too.
  var KINDS = {};
  // Zone kinds of the configuration (detector.zones.ZoneKind): their names in both languages.
  var ZONE_KINDS = {
    no_vending: { zh: "禁止占道经营区", en: "No vending" },
    vending_allowed: { zh: "允许经营区（疏导点）", en: "Vending allowed" },
    bike_parking: { zh: "非机动车停放区", en: "Bike parking" },
    watch_area: { zh: "重点关注区", en: "Watch area" },
    exclusion: { zh: "排除区（不检测）", en: "Exclusion (not analysed)" }
  };
  var ZONE_COLORS = {};
  function setKinds(body) {
    Object.keys(KINDS).forEach(function (k) { delete KINDS[k]; });
    (body.data || []).forEach(function (k) {
      KINDS[k.kind] = { code: k.category_code, zh: k.title_zh, en: k.title_en, color: k.color };
    });
    (body.zone_kinds || []).forEach(function (z) { ZONE_COLORS[z.kind] = z.color; });
  }
  var STRINGS = {
    zh: {
      title: "城管案件审核",
      langToggle: "English",
      keyLabel: "API 密钥",
      keyHint: "粘贴您的审核员 API 密钥（仅保存在本标签页中）。",
      signIn: "进入",
      signOut: "退出",
      filters: "筛选",
      camera: "摄像头",
      flight: "航拍",
      kind: "类别",
      all: "全部",
      from: "开始时间",
      to: "结束时间",
      apply: "应用",
      queue: "待审核案件",
      queueCount: "共 {n} 件",
      empty: "没有待审核的案件。",
      loading: "加载中…",
      caseTitle: "案件 #{id}",
      position: "第 {i} / {n} 件",
      zone: "区域",
      firstSeen: "首次发现",
      lastSeen: "最后发现",
      dwell: "持续时间",
      score: "置信度",
      category: "类别编码",
      address: "地址",
      status: "状态",
      crop: "目标截图",
      evidence: "取证图片",
      noEvidence: "无取证图片",
      confirm: "确认 (c)",
      reject: "驳回 (r)",
      changeClass: "更改类别",
      applyClass: "保存类别",
      prev: "上一件 (k)",
      next: "下一件 (j)",
      help: "快捷键 (?)",
      reasonLabel: "驳回理由（必填，回车提交，Esc 取消）",
      reasonRequired: "请填写驳回理由。",
      submitReject: "提交驳回",
      cancel: "取消",
      confirmed: "案件 #{id} 已确认。",
      rejected: "案件 #{id} 已驳回。",
      classChanged: "案件 #{id} 类别已改为 {kind}。",
      errorPrefix: "操作失败",
      badKey: "密钥无效或无权限：{msg}",
      helpTitle: "键盘快捷键",
      helpC: "确认当前案件",
      helpR: "驳回（输入理由后回车）",
      helpJ: "下一件",
      helpK: "上一件",
      helpQ: "显示/隐藏本帮助",
      helpEsc: "关闭理由框或帮助",
      close: "关闭",
      seconds: "{s} 秒",
      minutes: "{m} 分 {s} 秒",
      hours: "{h} 小时 {m} 分",
      st_pending: "待审核", st_confirmed: "已确认", st_rejected: "已驳回", st_merged: "已合并",
      navReview: "案件审核",
      navZones: "区域编辑",
      zoneEditor: "区域编辑",
      reloadFrame: "刷新画面",
      frameAt: "画面时间：{ts}",
      noFrame: "该摄像头尚无画面（{msg}）。仍可在空白画布上绘制区域。",
      newZone: "新建区域",
      closePolygon: "闭合多边形",
      undoPoint: "撤销上一点",
      cancelDrawing: "取消绘制",
      revertZones: "放弃修改",
      saveZones: "保存区域",
      zonesOf: "区域",
      zoneCount: "共 {n} 个",
      noZones: "该摄像头还没有区域。",
      zoneId: "区域编号",
      zoneKind: "区域类型",
      zoneName: "名称（可选）",
      zonePoints: "{n} 个顶点，坐标为画面宽高的 0..1 比例。",
      deleteZone: "删除区域",
      hintIdle: "点击区域可选中；拖动顶点可调整，双击顶点可删除该点。" +
                "点击“新建区域”开始绘制。",
      hintDrawing: "在画面上依次点击添加顶点（已 {n} 个）；" +
                   "点击第一个点、按回车或“闭合多边形”完成，Esc 取消。",
      needThree: "多边形至少需要 3 个顶点。",
      zonesSaved: "摄像头 {cam} 的 {n} 个区域已保存。",
      savedToFile: "已写入配置文件。",
      savedInMemory: "服务未配置配置文件：修改仅保存在内存中，重启后丢失。",
      zoneProblem: "区域“{id}”（{field}）：{msg}",
      unsavedDropped: "未保存的修改已放弃。",
      zoneDeleted: "区域“{id}”已删除（保存后生效）。"
    },
    en: {
      title: "Case review",
      langToggle: "中文",
      keyLabel: "API key",
      keyHint: "Paste your reviewer API key (kept in this tab only).",
      signIn: "Enter",
      signOut: "Sign out",
      filters: "Filters",
      camera: "Camera",
      flight: "Flight",
      kind: "Kind",
      all: "All",
      from: "From",
      to: "To",
      apply: "Apply",
      queue: "Pending cases",
      queueCount: "{n} in total",
      empty: "No pending cases.",
      loading: "Loading…",
      caseTitle: "Case #{id}",
      position: "{i} of {n}",
      zone: "Zone",
      firstSeen: "First seen",
      lastSeen: "Last seen",
      dwell: "Dwell",
      score: "Score",
      category: "Category code",
      address: "Address",
      status: "Status",
      crop: "Crop",
      evidence: "Evidence",
      noEvidence: "No evidence image",
      confirm: "Confirm (c)",
      reject: "Reject (r)",
      changeClass: "Change class",
      applyClass: "Save class",
      prev: "Previous (k)",
      next: "Next (j)",
      help: "Shortcuts (?)",
      reasonLabel: "Reason for rejecting (required; Enter submits, Esc cancels)",
      reasonRequired: "A reason is required.",
      submitReject: "Reject",
      cancel: "Cancel",
      confirmed: "Case #{id} confirmed.",
      rejected: "Case #{id} rejected.",
      classChanged: "Case #{id} is now {kind}.",
      errorPrefix: "Failed",
      badKey: "Key refused: {msg}",
      helpTitle: "Keyboard shortcuts",
      helpC: "Confirm the case",
      helpR: "Reject (type a reason, Enter)",
      helpJ: "Next case",
      helpK: "Previous case",
      helpQ: "Show/hide this help",
      helpEsc: "Close the reason box or help",
      close: "Close",
      seconds: "{s} s",
      minutes: "{m} min {s} s",
      hours: "{h} h {m} min",
      st_pending: "pending", st_confirmed: "confirmed", st_rejected: "rejected", st_merged: "merged",
      navReview: "Review",
      navZones: "Zone editor",
      zoneEditor: "Zone editor",
      reloadFrame: "Reload frame",
      frameAt: "Frame of {ts}",
      noFrame: "No frame from this camera yet ({msg}). You can still draw zones on the blank canvas.",
      newZone: "New zone",
      closePolygon: "Close polygon",
      undoPoint: "Undo point",
      cancelDrawing: "Cancel drawing",
      revertZones: "Discard changes",
      saveZones: "Save zones",
      zonesOf: "Zones",
      zoneCount: "{n} in total",
      noZones: "This camera has no zones yet.",
      zoneId: "Zone id",
      zoneKind: "Kind",
      zoneName: "Name (optional)",
      zonePoints: "{n} points, as fractions 0..1 of the frame width and height.",
      deleteZone: "Delete zone",
      hintIdle: "Click a zone to select it; drag a point to move it, double-click a point to remove it. " +
                "\"New zone\" starts drawing.",
      hintDrawing: "Click on the frame to add points ({n} so far); click the first point, press Enter or " +
                   "\"Close polygon\" to finish, Esc cancels.",
      needThree: "A polygon needs at least 3 points.",
      zonesSaved: "{n} zones of camera {cam} saved.",
      savedToFile: "Written to the configuration file.",
      savedInMemory: "The service has no configuration file: kept in memory only, lost at restart.",
      zoneProblem: "Zone \"{id}\" ({field}): {msg}",
      unsavedDropped: "Unsaved changes were discarded.",
      zoneDeleted: "Zone \"{id}\" deleted (takes effect when saved)."
    }
  };
  function t(lang, key, params) {
    var table = STRINGS[lang] || STRINGS.zh;
    var text = key in table ? table[key] : (STRINGS.zh[key] || key);
    if (params) {
      Object.keys(params).forEach(function (name) { text = text.split("{" + name + "}").join(String(params[name])); });
    }
    return text;
  }
  function kindLabel(lang, kind, code) {
    var k = KINDS[kind];
    var name = k ? (lang === "en" ? k.en : k.zh) : kind.replace(/_/g, " ");
    var c = code || (k && k.code);
    return c ? name + " (" + c + ")" : name;
  }
  function zoneKindLabel(lang, kind) {
    var k = ZONE_KINDS[kind];
    return k ? (lang === "en" ? k.en : k.zh) : kind;
  }
  function zoneKindColor(kind) { return ZONE_COLORS[kind] || "#c8c8c8"; }
  window.SW_I18N = { KINDS: KINDS, ZONE_KINDS: ZONE_KINDS, STRINGS: STRINGS, t: t, kindLabel: kindLabel,
                     zoneKindLabel: zoneKindLabel, zoneKindColor: zoneKindColor, setKinds: setKinds };
})();
